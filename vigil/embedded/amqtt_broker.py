"""Run the embedded amqtt broker on PORT of 127.0.0.1 and of any further ADDRESS given
(used when Mosquitto is not installed): ``python -m vigil.embedded.amqtt_broker PORT [ADDRESS...]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence


async def serve(port: int, addresses: Sequence[str] = ()) -> None:
    from amqtt.broker import Broker

    listeners = {f"on {a}": {"type": "tcp", "bind": f"{a}:{port}"} for a in addresses}
    # amqtt requires a listener named 'default'. It is the loopback one, and listed last:
    # listeners open in order, and whoever waits for the broker waits for loopback.
    listeners["default"] = {"type": "tcp", "bind": f"127.0.0.1:{port}"}
    broker = Broker(
        {
            "listeners": listeners,
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(sys.argv[1]), sys.argv[2:]))
