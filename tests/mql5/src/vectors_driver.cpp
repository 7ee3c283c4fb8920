// Runs golden-vector cases through Guard, Sizing and Manager.
// stdin: one JSON object per line: {"module": "guard"|"sizing"|"manager", "op": ..., "input": {...}}
// stdout: one JSON object per line with the module's result (see shared_schema/vectors/README.md).
#include "driver_common.h"

#include "Sidecar/Guard.mqh"
#include "Sidecar/Manager.mqh"
#include "Sidecar/Sizing.mqh"

static void ReadState(const CJsonFlat &j, GuardState &s)
{
   GuardStateReset(s);
   s.day_start = InL(j, "input.state.day_start", 0);
   s.day_start_equity = InD(j, "input.state.day_start_equity", 0.0);
   s.hwm = InD(j, "input.state.hwm", 0.0);
   s.seen = InL(j, "input.state.seen", 0);
   s.floor_time = InL(j, "input.state.floor_time", 0);
   int n = j.Count("input.state.signals", JSON_T_ARR);
   for(int i = 0; i < n && i < GUARD_MAX_SIGNALS; i++)
   {
      string p = "input.state.signals[" + IntegerToString(i) + "]";
      s.sig_id[s.sig_count] = InS(j, p + ".id", "");
      s.sig_time[s.sig_count] = InL(j, p + ".time", 0);
      s.sig_count++;
   }
}

static string RunGuard(const CJsonFlat &j, const string &op)
{
   GuardLimits l;
   GuardLimitsDefaults(l);
   l.max_risk_pct = InD(j, "input.limits.max_risk_pct", l.max_risk_pct);
   l.max_leverage = InD(j, "input.limits.max_leverage", l.max_leverage);
   l.daily_loss_pct = InD(j, "input.limits.daily_loss_pct", l.daily_loss_pct);
   l.floating_loss_pct = InD(j, "input.limits.floating_loss_pct", l.floating_loss_pct);
   l.max_drawdown_pct = InD(j, "input.limits.max_drawdown_pct", l.max_drawdown_pct);
   l.max_positions = (int)InL(j, "input.limits.max_positions", l.max_positions);
   l.max_lot = InD(j, "input.limits.max_lot", l.max_lot);
   l.max_spread_points = InD(j, "input.limits.max_spread_points", l.max_spread_points);
   l.dup_window_sec = (int)InL(j, "input.limits.dup_window_sec", l.dup_window_sec);
   l.day_offset_hours = InD(j, "input.limits.day_offset_hours", l.day_offset_hours);
   l.equity_floor_pct = InD(j, "input.limits.equity_floor_pct", l.equity_floor_pct);
   GuardState s;
   ReadState(j, s);
   if(op == "on_account")
   {
      string event = "";
      long now = InL(j, "input.server_time", 0);
      bool needed = GuardDayHistoryNeeded(s, l, now);
      bool changed = GuardObserve(s, l, now, InD(j, "input.equity", 0.0), InD(j, "input.balance", 0.0),
                                  InB(j, "input.history_ok", false), InD(j, "input.day_closed", 0.0), event);
      return string("{\"changed\":") + (changed ? "true" : "false") + ",\"day_start\":" +
             IntegerToString(s.day_start) + ",\"day_start_equity\":" + Num(s.day_start_equity) +
             ",\"hwm\":" + Num(s.hwm) + ",\"seen\":" + IntegerToString(s.seen) + ",\"floor_time\":" +
             IntegerToString(s.floor_time) + ",\"event\":" + JsonQuote(event) + ",\"history_needed\":" +
             (needed ? "true" : "false") + "}";
   }
   if(op == "position_risk")
   {
      double r = GuardPositionRisk(InS(j, "input.side", "") == "buy", InD(j, "input.volume", 0.0),
                                   InD(j, "input.price", 0.0), InD(j, "input.sl", 0.0),
                                   InD(j, "input.tick_size", 0.0), InD(j, "input.tick_value", 0.0));
      return string("{\"risk\":") + Num(r) + "}";
   }
   GuardAccount a;
   a.balance = InD(j, "input.account.balance", 0.0);
   a.equity = InD(j, "input.account.equity", 0.0);
   a.floating_pl = InD(j, "input.account.floating_pl", 0.0);
   a.positions = (int)InL(j, "input.account.positions", 0);
   a.symbol_positions = (int)InL(j, "input.account.symbol_positions", 0);
   a.open_notional = InD(j, "input.account.open_notional", 0.0);
   a.open_risk = InD(j, "input.account.open_risk", 0.0);
   a.no_stop = (int)InL(j, "input.account.no_stop", 0);
   GuardSymbol sym;
   sym.tick_size = InD(j, "input.symbol.tick_size", 0.0);
   sym.tick_value = InD(j, "input.symbol.tick_value", 0.0);
   sym.volume_min = InD(j, "input.symbol.volume_min", 0.0);
   sym.volume_step = InD(j, "input.symbol.volume_step", 0.0);
   sym.volume_max = InD(j, "input.symbol.volume_max", 0.0);
   GuardEntry e;
   e.volume = InD(j, "input.entry.volume", 0.0);
   e.price = InD(j, "input.entry.price", 0.0);
   e.loss_per_lot = InD(j, "input.entry.loss_per_lot", 0.0);
   e.leverage_cap = InD(j, "input.entry.leverage_cap", 0.0);
   e.signal_id = InS(j, "input.entry.signal_id", "");
   e.spread_points = InD(j, "input.entry.spread_points", 0.0);
   e.sidecar_ok = InB(j, "input.entry.sidecar_ok", true);
   e.now_gmt = InL(j, "input.entry.now_gmt", 0);
   e.valid_until = InL(j, "input.entry.valid_until", 0);
   e.now_server = InL(j, "input.entry.now_server", 0);
   GuardDecision d;
   GuardCheckEntry(l, s, a, sym, e, d);
   return string("{\"allowed\":") + (d.allowed ? "true" : "false") + ",\"cut\":" + (d.cut ? "true" : "false") +
          ",\"volume\":" + Num(d.volume) + ",\"code\":" + JsonQuote(d.code) + "}";
}

static string RunSizing(const CJsonFlat &j)
{
   SizingSpec spec;
   spec.tick_size = InD(j, "input.symbol.tick_size", 0.0);
   spec.tick_value = InD(j, "input.symbol.tick_value", 0.0);
   spec.volume_min = InD(j, "input.symbol.volume_min", 0.0);
   spec.volume_step = InD(j, "input.symbol.volume_step", 0.0);
   spec.volume_max = InD(j, "input.symbol.volume_max", 0.0);
   SizingResult r;
   SizingLotsForRiskPct(InD(j, "input.equity", 0.0), InD(j, "input.risk_pct", 0.0), InD(j, "input.entry", 0.0),
                        InD(j, "input.sl", 0.0), spec, r);
   return string("{\"ok\":") + (r.ok ? "true" : "false") + ",\"code\":" + JsonQuote(SizingCodeName(r.code)) +
          ",\"loss_per_lot\":" + Num(r.loss_per_lot) + ",\"lots\":" + Num(r.lots) + "}";
}

static string RunManager(const CJsonFlat &j)
{
   ManagePosition pos;
   string side = InS(j, "input.position.side", "");
   pos.side = side == "buy" ? MANAGER_SIDE_BUY : (side == "sell" ? MANAGER_SIDE_SELL : 0);
   pos.volume = InD(j, "input.position.volume", 0.0);
   pos.price_open = InD(j, "input.position.price_open", 0.0);
   pos.sl = InD(j, "input.position.sl", 0.0);
   pos.tp = InD(j, "input.position.tp", 0.0);
   pos.risk_distance = InD(j, "input.position.risk_distance", 0.0);
   pos.partial_done = InB(j, "input.position.partial_done", false);
   ManageMarket m;
   m.bid = InD(j, "input.market.bid", 0.0);
   m.ask = InD(j, "input.market.ask", 0.0);
   m.atr = InD(j, "input.market.atr", 0.0);
   m.point = InD(j, "input.market.point", 0.0);
   m.tick_size = InD(j, "input.market.tick_size", 0.0);
   m.digits = (int)InL(j, "input.market.digits", 5);
   m.stops_level = (int)InL(j, "input.market.stops_level", 0);
   m.freeze_level = (int)InL(j, "input.market.freeze_level", 0);
   m.volume_min = InD(j, "input.market.volume_min", 0.01);
   m.volume_step = InD(j, "input.market.volume_step", 0.01);
   ManageParams p;
   ManageParamsDefaults(p);
   p.breakeven_r = InD(j, "input.params.breakeven_r", p.breakeven_r);
   p.partial_r = InD(j, "input.params.partial_r", p.partial_r);
   p.partial_fraction = InD(j, "input.params.partial_fraction", p.partial_fraction);
   p.trail_atr = InD(j, "input.params.trail_atr", p.trail_atr);
   p.trail_distance = InD(j, "input.params.trail_distance", p.trail_distance);
   p.breakeven_offset = InD(j, "input.params.breakeven_offset", p.breakeven_offset);
   ManageAction a;
   ManagerDecide(pos, m, p, a);
   return string("{\"close_volume\":") + Num(a.close_volume) + ",\"modify\":" + (a.modify ? "true" : "false") +
          ",\"new_sl\":" + Num(a.new_sl) + ",\"reason\":" + JsonQuote(a.reason) + "}";
}

int main()
{
   std::string line;
   CJsonFlat *j = new CJsonFlat();
   int rc = 0;
   while(std::getline(std::cin, line))
   {
      if(line.empty())
         continue;
      if(!j->Parse(line))
      {
         std::cout << "{\"driver_error\":" << JsonQuote("bad input: " + j->m_error) << "}\n";
         rc = 1;
         continue;
      }
      string module = InS(*j, "module", "");
      string op = InS(*j, "op", "");
      if(module == "guard")
         std::cout << RunGuard(*j, op) << "\n";
      else if(module == "sizing")
         std::cout << RunSizing(*j) << "\n";
      else if(module == "manager")
         std::cout << RunManager(*j) << "\n";
      else
      {
         std::cout << "{\"driver_error\":" << JsonQuote("unknown module " + module) << "}\n";
         rc = 1;
      }
   }
   delete j;
   return rc;
}
