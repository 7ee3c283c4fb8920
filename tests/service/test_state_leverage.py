"""`/v1/state` tells each account's effective leverage next to its cap (the status page shows
both)."""

from __future__ import annotations

import json
from pathlib import Path

from sidecar.config import Config
from sidecar.service.handler import Sidecar
from sidecar.store import Store
from sidecar.testing import messages

ROWS = messages.eurusd_rows()[:300]
T = int(ROWS[-1][0]) + 3600


def test_the_state_shows_the_effective_leverage_of_the_reported_positions(tmp_path: Path) -> None:
    sidecar = Sidecar(Config(), Store(str(tmp_path / "s.sqlite")))
    try:
        for msg in (
            messages.hello(login=7, bars=ROWS, server=T),
            messages.tick(
                T,
                1.1000,
                1.1001,
                login=7,
                equity=5_000.0,
                positions=[messages.position(501, price_open=1.1000) | {"volume": 0.5}],
            ),
        ):
            _, code = sidecar.handle(json.dumps(msg).encode())
            assert code is None
            sidecar.after_reply()
        account = sidecar.state_report()["accounts"][0]
        # 0.5 lots x 100,000 x 1.1 = 55,000 USD of notional on 5,000 of equity
        assert account["leverage"]["effective"] == 11.0
        assert account["leverage"]["cap"] > 0 and account["leverage"]["regime"]
    finally:
        sidecar.close()
