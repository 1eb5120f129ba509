"""`serve` raises its open-file limit to the hard limit, and takes no more connections than that limit holds."""

import resource
import subprocess
import sys


def test_prepare_raises_the_soft_open_file_limit_to_the_hard_limit() -> None:
    # In a child process: the limit is process-wide, and this one's must stay as the test runner set it.
    script = (
        "import resource\n"
        "from gateway import runtime\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "runtime.prepare(serving=True)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard, runtime.connection_limit(10**9))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    soft, hard, connections = (int(part) for part in out.split())
    wanted = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
    assert soft == wanted
    assert connections == soft - 64  # max_connections above what the limit holds is lowered to fit
