"""Tests mirror the packages: `tests/gateway/web/` tests `gateway/web/`, `tests/store/` tests `store/`, and so on.
A helper shared by several test modules is a private module named for what it holds (`_server.py`,
`_shopify_deliveries.py`); pytest collects only `test_*.py`."""
