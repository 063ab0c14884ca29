"""Process-level allocator settings (``fnet.runtime``): the huge-page tunable and the one re-exec."""

from __future__ import annotations

import pytest


def test_hugetlb_tunable_is_added_once():
    from fnet.runtime import with_hugetlb

    assert with_hugetlb("") == "glibc.malloc.hugetlb=1"
    assert with_hugetlb("glibc.malloc.arena_max=2") == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert with_hugetlb("glibc.malloc.hugetlb=0:a=1") == "a=1:glibc.malloc.hugetlb=1"


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc settings are Linux-only")
def test_entry_point_reexecs_once_with_the_tunable_and_library_calls_never_do():
    import os
    import subprocess
    import sys

    code = ("from fnet.runtime import configure_allocator; "
            "print(configure_allocator(reexec_argv=['fnet', '--version']))")
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "FNET_ALLOCATOR_REEXEC", "FNET_ALLOCATOR")}
    run = lambda extra: subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True,
                                       text=True, timeout=120)
    reexec = run({})
    assert reexec.returncode == 0 and reexec.stdout.startswith("fnet "), reexec.stdout + reexec.stderr  # the CLI ran
    marked = run({"FNET_ALLOCATOR_REEXEC": "1"})  # already re-executed: configure in place, no loop
    assert "'allocator': 'glibc-mallopt'" in marked.stdout and "'hugetlb': False" in marked.stdout, marked.stdout
    tuned = run({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})
    assert "'hugetlb': True" in tuned.stdout, tuned.stdout
    # the re-executed process hides fnet's tunable again from its children
    code = ("import os; from fnet.runtime import configure_allocator; "
            "print(configure_allocator(reexec_argv=['fnet']), os.environ.get('GLIBC_TUNABLES'))")
    after = run({"GLIBC_TUNABLES": "a=1:glibc.malloc.hugetlb=1", "FNET_ALLOCATOR_REEXEC": "1",
                 "FNET_ALLOCATOR_ORIGINAL_TUNABLES": "a=1"})
    assert "'hugetlb': True" in after.stdout and after.stdout.strip().endswith("a=1"), after.stdout
    off = run({"FNET_ALLOCATOR": "default"})
    assert "'allocator': 'default'" in off.stdout, off.stdout
