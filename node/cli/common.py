"""What every `openledger` command shares: the user-error type, argument types, passwords."""
import argparse
import getpass
import math
import pathlib

DEFAULT_DATADIR = ".devnet"


class CliError(Exception):
    """A user error: printed as `error: ...` and exit status 1."""


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: want an integer 0..65535") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value}: want 0..65535")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: want a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value}: want a positive integer")
    return value


def uint(text: str) -> int:
    """A non-negative integer, decimal or 0x-hex (ids, amounts in wei, counts)."""
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: want a non-negative integer")
    return value


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: want a positive number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: want a positive number")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --block-time {text!r}: want seconds >= 0") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"invalid --block-time {text!r}: want seconds in [0, 3600]")
    return value


def read_password(password_file: str | None, *, confirm: bool = False) -> str:
    """The first line of `password_file`, or a prompt (asked twice when `confirm`)."""
    from node.logs import register_secret

    if password_file:
        try:
            password = pathlib.Path(password_file).read_text().splitlines()[0]
        except (OSError, IndexError):
            raise CliError(f"cannot read a password from {password_file!r}") from None
        register_secret(password)  # never in a log line, whatever logs it by mistake
        return password
    password = getpass.getpass("Password: ")
    register_secret(password)
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise CliError("passwords do not match")
    return password


def add_ray_flags(p: argparse.ArgumentParser, what: str) -> None:
    """`--ray auto|ADDRESS` and `--workers N`: spread `what` over a Ray cluster (training.cluster)."""
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help=f"run {what} on Ray: 'auto' starts a local instance, an address joins a cluster")
    p.add_argument("--workers", type=positive, metavar="N", help="Ray workers (default: the cluster's CPUs)")


def ray_workers(args: argparse.Namespace) -> int | None:
    """Connect to Ray when `--ray` was given; the number of workers to use, else None."""
    if not getattr(args, "ray", None):
        if getattr(args, "workers", None):
            raise CliError("--workers needs --ray auto or --ray ADDRESS")
        return None
    from training.cluster import connect

    try:
        ray = connect(args.ray)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise CliError(f"cannot reach Ray at {args.ray!r}: {exc}") from None
    return args.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
