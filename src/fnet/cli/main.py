"""The ``fnet`` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in ``fnet.cli.<module>`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed namespace, returning an exit code).
Modules are imported only when the command line is parsed, so ``fnet --help`` stays fast.

Errors take one path (:func:`main`): one line on stderr naming the flag or path and the fix, no
traceback. Exit status 2: the input is wrong (a flag, a file, an output that is not usable as given);
1: the operating system failed a read or write (disk full, file too large, I/O error, permission
denied while writing); 0: success.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

# subcommand modules, in the order `fnet --help` lists them
SUBCOMMAND_MODULES = [
    "fnet.cli.demo",
    "fnet.cli.tokenizer",
    "fnet.cli.pretrain",
    "fnet.cli.finetune",
    "fnet.cli.evaluate",
    "fnet.cli.predict",
    "fnet.cli.calibrate",
    "fnet.cli.generate",
    "fnet.cli.vae",
    "fnet.cli.grow",
    "fnet.cli.embed",
    "fnet.cli.distill",
    "fnet.cli.bench",
    "fnet.cli.export",
]


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose usage errors (an unknown flag, a value outside ``choices``) are one line on
    stderr, exit status 2, like every other fnet error; ``--help`` still prints the usage. The
    subcommands' parsers inherit the class (``add_subparsers`` builds them with ``type(self)``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="fnet",
        description="Build, pretrain, fine-tune, compare and export FNet encoders.",
    )
    from fnet import __version__

    parser.add_argument("--version", action="version", version=f"fnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # subcommand not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fnet.runtime import configure_allocator

    # as the `fnet` command (argv None): re-exec once with glibc's huge-page tunable; in-process
    # calls (tests, scripts) only get the run-time part (runtime.py); asking for help runs no model
    words = sys.argv[1:] if argv is None else argv
    if not words or {"-h", "--help", "--version"} & set(words):
        configure_allocator() if argv is None else None
    else:
        configure_allocator(reexec_argv=sys.argv if argv is None else None)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        # user errors: one clear line, no traceback
        print(f"fnet {args.command}: error: {_user_message(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # the system failed a read or a write
        print(f"fnet {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 1


def _user_message(err: BaseException) -> str:
    if isinstance(err, KeyError):  # str(KeyError) is the quoted key
        return f"missing {err.args[0]!r}" if err.args else "missing key"
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free space or write to another disk",
    errno.EFBIG: "the file grew past the size this process may write (ulimit -f) or the filesystem allows",
    errno.EDQUOT: "the disk quota is exhausted: free space or write elsewhere",
    errno.EACCES: "permission denied: choose a path this user may write, or change its permissions",
    errno.EPERM: "operation not permitted: choose a path this user may write",
    errno.EROFS: "the filesystem is read-only: choose a writable path",
    errno.EIO: "input/output error: check the disk",
}


def os_error_message(err: OSError) -> str:
    """One line for an OS failure: what failed, on which path, and what to do."""
    where = f" ({err.filename})" if err.filename else ""
    fix = _OS_FIXES.get(err.errno or -1, "check the disk's free space, quota and size limits (ulimit -f)")
    return f"{err.strerror or type(err).__name__}{where}: {fix}"


if __name__ == "__main__":
    sys.exit(main())
