"""The default strategy end to end: `resonance` on real EURUSD H1 bars through a real sidecar.

hello with 300 real bars, then one tick per new closed bar over ZeroMQ, as the EA sends them.
Every open must be the strategy's own signal on that bar, explained by its vote, and sized by the
documented budget (1%, halved when the ATR sits in the top quintile of its last 500 values).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.config import Config
from sidecar.engine.bars import Bars
from sidecar.engine.strategies.resonance import ResonanceStrategy
from sidecar.engine.volatility import atr_percentile
from sidecar.testing import messages
from sidecar.testing.server import SidecarProcess

ROWS = messages.eurusd_rows()[:1300]
LOGIN = 3001


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    folder = tmp_path_factory.mktemp("resonance")
    config = folder / "sidecar.toml"
    config.write_text('[strategy]\nname = "resonance"\n')
    with SidecarProcess(folder / "sidecar.sqlite", config=config) as proc:
        yield proc


def _verdicts(proc: SidecarProcess) -> list[dict]:
    client = proc.zmq()
    ack = client.send(messages.hello(login=LOGIN, bars=ROWS[:300], server=ROWS[299][0] + 3600))
    assert ack["type"] == "ack"
    out = []
    for i in range(300, len(ROWS)):
        bar = ROWS[i]
        price = bar[4]
        out.append(
            client.send(
                messages.tick(
                    server=bar[0] + 3600,
                    bid=price,
                    ask=round(price + 0.00007, 5),
                    login=LOGIN,
                    bars=[bar],
                    msg_id=f"r-{i}",
                )
            )
        )
    client.close()
    return out


def test_resonance_opens_trades_that_its_vote_explains(server: SidecarProcess) -> None:
    verdicts = _verdicts(server)
    strategy = ResonanceStrategy({})
    bars = Bars.from_rows(ROWS)
    window = Config().sizing.volatility_window
    opens = 0
    kinds: set[tuple[str, str]] = set()
    high_vol_opens = 0
    for k, v in enumerate(verdicts):
        i = 300 + k
        history = bars.head(i + 1)
        signal = strategy.evaluate(history)
        if signal is None:
            assert v["action"] == "hold"
            continue
        assert v["action"] == "open", v["reasons"]
        opens += 1
        o = v["open"]
        assert o["side"] == signal.side
        vote = f"SIGNAL_RESONANCE side={signal.side} votes={','.join(signal.votes)} "
        assert v["reasons"][0].startswith(vote), v["reasons"]
        assert f"adx={signal.context['adx']:.6g}" in v["reasons"][0]
        assert f"rsi={signal.context['rsi']:.6g}" in v["reasons"][0]
        entry = round(ROWS[i][4] + 0.00007, 5) if o["side"] == "buy" else ROWS[i][4]
        assert abs(o["tp"] - entry) == pytest.approx(signal.tp_distance, abs=1e-5)
        assert abs(entry - o["sl"]) == pytest.approx(signal.sl_distance, abs=1e-5)
        kinds.add((signal.side, signal.votes[0]))
        pct = atr_percentile(history, 14, window)
        high_vol = pct is not None and pct > 80.0
        assert any(r.startswith("SIZE_VOLATILITY") for r in v["reasons"]) is high_vol
        high_vol_opens += high_vol
        budget = "0.5" if high_vol else "1"
        assert any(r.startswith(f"SIZE_RISK risk_pct={budget} ") for r in v["reasons"])
    # This stretch has trend entries both ways, mean-reversion entries both ways, and opens in
    # the top ATR quintile once 640 bars of history exist.
    assert opens >= 10
    assert {("buy", "ema"), ("sell", "ema"), ("buy", "rsi"), ("sell", "rsi")} <= kinds
    assert high_vol_opens >= 1
    assert all(v["leverage_cap"] == 300 for v in verdicts)  # no journal: no profit phase
