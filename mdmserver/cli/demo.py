"""``mdmserver demo``: see the whole MDM loop work on this machine in under a minute."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--devices", default=3, show_default=True, type=click.IntRange(1, 200))
@click.option(
    "--timeout", default=120.0, show_default=True, type=float, help="Give up after (seconds)."
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the server and devices up until Ctrl-C (the instance is removed then).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instance folder to create and keep (default: a temporary one, removed afterwards).",
)
@click.option("--port", default=0, type=int, help="HTTPS port (default: a free one).")
def demo(devices: int, timeout: float, keep_running: bool, home: Path | None, port: int) -> None:
    """Start a throwaway server, an APNs stand-in and simulated devices; lock one of them."""
    need_simulator()
    from mdmserver.simulator.demo import DemoFailed, DemoInterrupted, DemoOptions, run_demo

    if home is not None and home.exists() and any(home.iterdir()):
        raise click.UsageError(f"--home {home} is not empty; the demo creates a new instance")
    try:
        run_demo(DemoOptions(devices, timeout, keep_running, home, port))
    except DemoFailed:
        raise SystemExit(1) from None
    except DemoInterrupted:
        raise SystemExit(130) from None  # the shell's status for "stopped by Ctrl-C"


def need_simulator() -> None:
    """The simulator speaks HTTP with ``requests`` (a dev dependency): say so plainly."""
    try:
        import requests  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "the simulator needs the requests package: pip install -e '.[dev]'"
        ) from None
