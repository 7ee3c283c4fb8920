//+------------------------------------------------------------------+
//| Guard.mqh -- hard limits enforced by the EA whatever the verdict. |
//| Pure logic in the MQL5/C++ common subset (tested with g++ and     |
//| mirrored by sidecar/guard.py; shared_schema/vectors/guard/*.json  |
//| keep both equal). No terminal calls here: the EA passes account,  |
//| symbol and time in, and persists GuardState via the string form.  |
//+------------------------------------------------------------------+
#ifndef SIDECAR_GUARD_MQH
#define SIDECAR_GUARD_MQH

#include "Sizing.mqh"

#define GUARD_MAX_SIGNALS    64
#define GUARD_MAX_SIGNAL_LEN 64
#define GUARD_PCT_EPS        0.000000001
#define GUARD_DAY_SECONDS    86400
// Ceilings no input may loosen (DESIGN.md: risk hard max 2%, leverage 1:500 whatever the broker
// allows, 1-5 positions; the sidecar's configuration refuses the same values)
#define GUARD_HARD_MAX_RISK_PCT  2.0
#define GUARD_HARD_MAX_LEVERAGE  500.0
#define GUARD_HARD_MAX_POSITIONS 5
// A broker-day rollover counts as witnessed (the anchor is the equity then) when the account was
// seen at most this long before the day started and again at most this long after; otherwise the
// anchor is rebuilt from the deal history (GuardObserve).
#define GUARD_ROLL_WITNESS_SEC 300

struct GuardLimits
  {
   double            max_risk_pct;       // of equity, per trade (2)
   double            max_leverage;       // notional / equity incl. the new trade (500)
   double            daily_loss_pct;     // of the broker day's start equity (3); reached -> no entries
   double            floating_loss_pct;  // open loss of balance (10); exceeded -> no entries
   double            max_drawdown_pct;   // from the equity high-water mark (15); reached -> no entries
   int               max_positions;      // of this EA (3)
   double            max_lot;            // per trade; <= 0 disables
   double            max_spread_points;  // <= 0 disables
   int               dup_window_sec;     // same signal id within this many seconds -> refused (300)
   double            day_offset_hours;   // broker day = server midnight + this (the sidecar's
                                         // [broker] day_offset_hours; -7 = 17:00), in [-23, 23],
                                         // whole minutes
   double            equity_floor_pct;   // hard floor: equity at or below this % of the high-water
                                         // mark -> close everything, no entries (0 = off)
  };

struct GuardState
  {
   long              day_start;          // server time the current broker day started
   double            day_start_equity;
   double            hwm;                // equity high-water mark
   long              seen;               // server time of the last account observation
   long              floor_time;         // server time the equity floor was hit (0 = not hit)
   int               sig_count;
   string            sig_id[GUARD_MAX_SIGNALS];
   long              sig_time[GUARD_MAX_SIGNALS];  // server time the signal was accepted
  };

struct GuardAccount
  {
   double            balance;
   double            equity;
   double            floating_pl;        // profit + swap of all open positions (negative = loss)
   int               positions;          // open positions of this EA (all symbols)
   int               symbol_positions;   // open positions of this EA on the verdict's symbol
   double            open_notional;      // notional of all open positions, account currency
   double            open_risk;          // money the open positions lose further if every stop is
                                         // hit (sum of GuardPositionRisk), account currency
   int               no_stop;            // open positions without a stop (or that cannot be valued)
  };

struct GuardSymbol
  {
   double            tick_size;
   double            tick_value;
   double            volume_min;
   double            volume_step;
   double            volume_max;
  };

struct GuardEntry
  {
   double            volume;             // asked by the verdict
   double            price;              // expected fill price
   double            loss_per_lot;       // money lost by 1 lot at the stop (OrderCalcProfit)
   double            leverage_cap;       // from the verdict; <= 0 = none
   string            signal_id;
   double            spread_points;
   bool              sidecar_ok;         // the last request got a valid answer
   long              now_gmt;            // compared with valid_until
   long              valid_until;        // of the verdict
   long              now_server;         // for duplicate signals
  };

struct GuardDecision
  {
   bool              allowed;
   bool              cut;                // allowed with less volume than asked
   double            volume;             // final volume (0 when refused)
   string            code;               // OK or the binding rule
   string            detail;             // key=value context for the log
  };

void GuardLimitsDefaults(GuardLimits &l)
  {
   l.max_risk_pct = 2.0;
   l.max_leverage = 500.0;
   l.daily_loss_pct = 3.0;
   l.floating_loss_pct = 10.0;
   l.max_drawdown_pct = 15.0;
   l.max_positions = 3;
   l.max_lot = 0.0;
   l.max_spread_points = 0.0;
   l.dup_window_sec = 300;
   l.day_offset_hours = 0.0;
   l.equity_floor_pct = 0.0;
  }

// A human-readable list of invalid limits ("" when valid); the EA refuses to start otherwise.
string GuardLimitsErrors(const GuardLimits &l)
  {
   string e = "";
   if(!(l.max_risk_pct > 0.0 && l.max_risk_pct <= GUARD_HARD_MAX_RISK_PCT))
      e += "max_risk_pct must be in (0, " + DoubleToString(GUARD_HARD_MAX_RISK_PCT, 1) + "]; ";
   if(!(l.max_leverage >= 1.0 && l.max_leverage <= GUARD_HARD_MAX_LEVERAGE))
      e += "max_leverage must be in [1, " + DoubleToString(GUARD_HARD_MAX_LEVERAGE, 0) + "]; ";
   if(!(l.daily_loss_pct > 0.0 && l.daily_loss_pct <= 100.0))
      e += "daily_loss_pct must be in (0, 100]; ";
   if(!(l.floating_loss_pct > 0.0 && l.floating_loss_pct <= 100.0))
      e += "floating_loss_pct must be in (0, 100]; ";
   if(!(l.max_drawdown_pct > 0.0 && l.max_drawdown_pct <= 100.0))
      e += "max_drawdown_pct must be in (0, 100]; ";
   if(l.max_positions < 1 || l.max_positions > GUARD_HARD_MAX_POSITIONS)
      e += "max_positions must be in 1.." + IntegerToString(GUARD_HARD_MAX_POSITIONS) + "; ";
   if(l.max_lot < 0.0)
      e += "max_lot must be >= 0 (0 = no extra cap); ";
   if(l.max_spread_points < 0.0)
      e += "max_spread_points must be >= 0 (0 = no cap); ";
   if(l.dup_window_sec < 0)
      e += "dup_window_sec must be >= 0; ";
   if(!(l.day_offset_hours >= -23.0 && l.day_offset_hours <= 23.0))
      e += "day_offset_hours must be in [-23, 23]; ";
   else
      if(MathAbs(l.day_offset_hours * 60.0 - MathRound(l.day_offset_hours * 60.0)) > 0.000001)
         e += "day_offset_hours must be a whole number of minutes (like the sidecar's); ";
   if(!(l.equity_floor_pct >= 0.0 && l.equity_floor_pct < 100.0))
      e += "equity_floor_pct must be in [0, 100) (0 = off); ";
   return e;
  }

void GuardStateReset(GuardState &s)
  {
   s.day_start = 0;
   s.day_start_equity = 0.0;
   s.hwm = 0.0;
   s.seen = 0;
   s.floor_time = 0;
   s.sig_count = 0;
   for(int i = 0; i < GUARD_MAX_SIGNALS; i++)
     {
      s.sig_id[i] = "";
      s.sig_time[i] = 0;
     }
  }

// Server time at which the broker day containing `server_time` started: server midnight shifted
// by `day_offset_hours` (whole seconds; the same rule as the sidecar's broker day).
long GuardDayStart(const long server_time, const double day_offset_hours)
  {
   long offset = (long)MathRound(day_offset_hours * 3600.0);
   long r = (server_time - offset) % GUARD_DAY_SECONDS;
   if(r < 0)
      r += GUARD_DAY_SECONDS;
   return server_time - r;
  }

// A rollover was witnessed when the account was seen shortly before the new day started and is
// seen again shortly after (GUARD_ROLL_WITNESS_SEC): the equity then is the day's start.
bool GuardRollWitnessed(const GuardState &s, const long day_start, const long server_time)
  {
   return s.seen > 0 && s.seen < day_start && s.seen >= day_start - GUARD_ROLL_WITNESS_SEC &&
          server_time - day_start <= GUARD_ROLL_WITNESS_SEC;
  }

// True when this observation starts a broker day (or the first anchor) whose rollover the EA did
// not witness: the caller then reads the day's closed results from the deal history for
// GuardObserve (only then: a history read on every tick would be wasted).
bool GuardDayHistoryNeeded(const GuardState &s, const GuardLimits &l, const long server_time)
  {
   long day = GuardDayStart(server_time, l.day_offset_hours);
   bool rolls = (day != s.day_start || s.day_start_equity <= 0.0) && day >= s.day_start;
   return rolls && !GuardRollWitnessed(s, day, server_time);
  }

// True when equity is at or below equity_floor_pct % of the high-water mark (never with the floor off).
bool GuardFloorReached(const GuardLimits &l, const GuardState &s, const double equity)
  {
   if(l.equity_floor_pct <= 0.0 || s.hwm <= 0.0 || !MathIsValidNumber(equity))
      return false;
   return equity / s.hwm * 100.0 <= l.equity_floor_pct + GUARD_PCT_EPS;
  }

// Rolls the broker day, the high-water mark and the equity floor. Returns true when an anchor
// changed (the caller persists the state then). `event` names how a new day was anchored:
//   DAY_ANCHOR_EQUITY     the rollover was witnessed: the equity now;
//   DAY_ANCHOR_REBUILT    not witnessed (the EA was not running, or first start): the balance at
//                         the day's start rebuilt from the deal history, balance - day_closed
//                         (the day's closed trade results the EA knows), or the equity now when
//                         higher (never a looser anchor than the old rule);
//   DAY_ANCHOR_NO_HISTORY not witnessed and no history (history_ok false): the equity now.
// The floor, once hit, stays hit (floor_time) until equity_floor_pct is set to 0.
bool GuardObserve(GuardState &s, const GuardLimits &l, const long server_time, const double equity,
                  const double balance, const bool history_ok, const double day_closed, string &event)
  {
   event = "";
   if(!MathIsValidNumber(equity) || equity <= 0.0)
      return false;
   bool changed = false;
   long day = GuardDayStart(server_time, l.day_offset_hours);
   if((day != s.day_start || s.day_start_equity <= 0.0) && day >= s.day_start)
     {
      double anchor = equity;
      event = "DAY_ANCHOR_EQUITY";
      if(!GuardRollWitnessed(s, day, server_time))
        {
         event = "DAY_ANCHOR_NO_HISTORY";
         if(history_ok && MathIsValidNumber(balance) && MathIsValidNumber(day_closed) && balance > 0.0)
           {
            event = "DAY_ANCHOR_REBUILT";
            if(balance - day_closed > anchor)
               anchor = balance - day_closed;
           }
        }
      s.day_start = day;
      s.day_start_equity = anchor;
      changed = true;
     }
   if(equity > s.hwm)
     {
      s.hwm = equity;
      changed = true;
     }
   if(l.equity_floor_pct <= 0.0)
     {
      if(s.floor_time != 0)
        {
         s.floor_time = 0;
         changed = true;
        }
     }
   else
      if(s.floor_time == 0 && GuardFloorReached(l, s, equity))
        {
         s.floor_time = server_time > 0 ? server_time : 1;
         changed = true;
        }
   if(server_time > s.seen)
      s.seen = server_time;   // not a change worth a write by itself (saved with the next one)
   return changed;
  }

// GuardObserve without a deal history (an unwitnessed new day starts at the equity now).
bool GuardOnAccount(GuardState &s, const GuardLimits &l, const long server_time, const double equity)
  {
   string event = "";
   return GuardObserve(s, l, server_time, equity, 0.0, false, 0.0, event);
  }

// Money one position (or order in flight) loses from `price` (its current closing price) to its
// stop: 0 when the stop is at or beyond the price on the profit side (nothing more to give back).
// -1 when it cannot be valued (bad numbers): the caller counts it as a position without a stop.
double GuardPositionRisk(const bool buy, const double volume, const double price, const double sl,
                         const double tick_size, const double tick_value)
  {
   if(!MathIsValidNumber(volume) || !MathIsValidNumber(price) || !MathIsValidNumber(sl) ||
      !MathIsValidNumber(tick_size) || !MathIsValidNumber(tick_value) || volume <= 0.0 || price <= 0.0 ||
      sl <= 0.0 || tick_size <= 0.0 || tick_value <= 0.0)
      return -1.0;
   double distance = buy ? price - sl : sl - price;
   if(distance <= 0.0)
      return 0.0;
   return distance / tick_size * tick_value * volume;
  }

// Printable ASCII without spaces, 1..64 characters (same length in MQL5 and C++ strings).
bool GuardSignalIdValid(const string id)
  {
   int n = StringLen(id);
   if(n < 1 || n > GUARD_MAX_SIGNAL_LEN)
      return false;
   for(int i = 0; i < n; i++)
     {
      ushort c = StringGetCharacter(id, i);
      if(c < 0x21 || c > 0x7E)
         return false;
     }
   return true;
  }

bool GuardIsDuplicate(const GuardState &s, const GuardLimits &l, const string id, const long now)
  {
   for(int i = 0; i < s.sig_count; i++)
     {
      if(s.sig_id[i] != id)
         continue;
      long age = now - s.sig_time[i];
      if(age <= (long)l.dup_window_sec)
         return true;
     }
   return false;
  }

// Records an accepted signal; drops entries older than the window, then the oldest when full.
void GuardRememberSignal(GuardState &s, const GuardLimits &l, const string id, const long now)
  {
   int w = 0;
   for(int i = 0; i < s.sig_count; i++)
     {
      if(now - s.sig_time[i] > (long)l.dup_window_sec)
         continue;
      s.sig_id[w] = s.sig_id[i];
      s.sig_time[w] = s.sig_time[i];
      w++;
     }
   s.sig_count = w;
   if(s.sig_count >= GUARD_MAX_SIGNALS)
     {
      for(int i = 1; i < s.sig_count; i++)
        {
         s.sig_id[i - 1] = s.sig_id[i];
         s.sig_time[i - 1] = s.sig_time[i];
        }
      s.sig_count--;
     }
   s.sig_id[s.sig_count] = id;
   s.sig_time[s.sig_count] = now;
   s.sig_count++;
  }

double GuardNotionalPerLot(const double price, const double tick_size, const double tick_value)
  {
   if(!MathIsValidNumber(price) || !MathIsValidNumber(tick_size) || !MathIsValidNumber(tick_value) ||
      price <= 0.0 || tick_size <= 0.0 || tick_value <= 0.0)
      return 0.0;
   return price * tick_value / tick_size;
  }

void GuardRefuse(GuardDecision &d, const string code, const string detail)
  {
   d.allowed = false;
   d.cut = false;
   d.volume = 0.0;
   d.code = code;
   d.detail = detail;
  }

// Account-level locks that block every new entry ("" when none). Management continues.
string GuardAccountLock(const GuardLimits &l, const GuardState &s, const GuardAccount &a, string &detail)
  {
   detail = "";
   if(!MathIsValidNumber(a.equity) || !MathIsValidNumber(a.balance) || a.equity <= 0.0 || a.balance <= 0.0)
     {
      detail = "equity=" + DoubleToString(a.equity, 2) + " balance=" + DoubleToString(a.balance, 2);
      return "BAD_ACCOUNT";
     }
   if(l.equity_floor_pct > 0.0 && (s.floor_time > 0 || GuardFloorReached(l, s, a.equity)))
     {
      detail = "equity=" + DoubleToString(a.equity, 2) + " floor=" + DoubleToString(s.hwm * l.equity_floor_pct / 100.0, 2) +
               " floor_pct=" + DoubleToString(l.equity_floor_pct, 2) + " hwm=" + DoubleToString(s.hwm, 2) +
               " since=" + IntegerToString(s.floor_time);
      return "EQUITY_FLOOR";
     }
   if(s.day_start_equity > 0.0)
     {
      double pct = (s.day_start_equity - a.equity) / s.day_start_equity * 100.0;
      if(pct >= l.daily_loss_pct - GUARD_PCT_EPS)
        {
         detail = "loss_pct=" + DoubleToString(pct, 4) + " limit=" + DoubleToString(l.daily_loss_pct, 2) +
                  " day_start_equity=" + DoubleToString(s.day_start_equity, 2);
         return "DAILY_LOSS";
        }
     }
   if(MathIsValidNumber(a.floating_pl))
     {
      double pct = -a.floating_pl / a.balance * 100.0;
      if(pct > l.floating_loss_pct + GUARD_PCT_EPS)
        {
         detail = "loss_pct=" + DoubleToString(pct, 4) + " limit=" + DoubleToString(l.floating_loss_pct, 2);
         return "FLOATING_LOSS";
        }
     }
   if(s.hwm > 0.0)
     {
      double pct = (s.hwm - a.equity) / s.hwm * 100.0;
      if(pct >= l.max_drawdown_pct - GUARD_PCT_EPS)
        {
         detail = "drawdown_pct=" + DoubleToString(pct, 4) + " limit=" + DoubleToString(l.max_drawdown_pct, 2) +
                  " hwm=" + DoubleToString(s.hwm, 2);
         return "DRAWDOWN";
        }
     }
   return "";
  }

// Decides whether a new entry may be sent and with which volume. Too many lots are CUT to the
// risk cap, the leverage cap, max_lot and volume_max (floored to the step); the entry is refused
// when that falls below volume_min.
void GuardCheckEntry(const GuardLimits &l, const GuardState &s, const GuardAccount &a, const GuardSymbol &sym,
                     const GuardEntry &e, GuardDecision &d)
  {
   d.allowed = false;
   d.cut = false;
   d.volume = 0.0;
   d.code = "";
   d.detail = "";
   if(!e.sidecar_ok)
     {
      GuardRefuse(d, "SIDECAR_DOWN", "");
      return;
     }
   if(e.now_gmt > e.valid_until)
     {
      GuardRefuse(d, "STALE_VERDICT", "age_past_valid_until=" + IntegerToString(e.now_gmt - e.valid_until));
      return;
     }
   string detail = "";
   string lock = GuardAccountLock(l, s, a, detail);
   if(lock != "")
     {
      GuardRefuse(d, lock, detail);
      return;
     }
   if(a.positions >= l.max_positions)
     {
      GuardRefuse(d, "MAX_POSITIONS", "open=" + IntegerToString(a.positions) + " limit=" + IntegerToString(l.max_positions));
      return;
     }
   if(a.symbol_positions > 0)
     {
      GuardRefuse(d, "SYMBOL_POSITION", "open_on_symbol=" + IntegerToString(a.symbol_positions));
      return;
     }
   if(a.no_stop > 0)
     {
      // a position without a stop can lose without bound: no budget can hold it
      GuardRefuse(d, "OPEN_NO_STOP", "positions_without_stop=" + IntegerToString(a.no_stop));
      return;
     }
   if(l.max_spread_points > 0.0 && (!MathIsValidNumber(e.spread_points) || e.spread_points > l.max_spread_points + GUARD_PCT_EPS))
     {
      GuardRefuse(d, "SPREAD", "spread_points=" + DoubleToString(e.spread_points, 1) + " limit=" +
                  DoubleToString(l.max_spread_points, 1));
      return;
     }
   if(!GuardSignalIdValid(e.signal_id))
     {
      GuardRefuse(d, "BAD_SIGNAL_ID", "length=" + IntegerToString(StringLen(e.signal_id)));
      return;
     }
   if(GuardIsDuplicate(s, l, e.signal_id, e.now_server))
     {
      GuardRefuse(d, "DUPLICATE_SIGNAL", "signal_id=" + e.signal_id);
      return;
     }
   SizingSpec spec;
   spec.tick_size = sym.tick_size;
   spec.tick_value = sym.tick_value;
   spec.volume_min = sym.volume_min;
   spec.volume_step = sym.volume_step;
   spec.volume_max = sym.volume_max;
   if(!SizingSpecValid(spec))
     {
      GuardRefuse(d, "BAD_SPEC", "");
      return;
     }
   double npl = GuardNotionalPerLot(e.price, sym.tick_size, sym.tick_value);
   if(npl <= 0.0)
     {
      GuardRefuse(d, "BAD_PRICE", "price=" + DoubleToString(e.price, 8));
      return;
     }
   if(!MathIsValidNumber(e.loss_per_lot) || e.loss_per_lot <= 0.0)
     {
      GuardRefuse(d, "BAD_STOP", "loss_per_lot=" + DoubleToString(e.loss_per_lot, 2));
      return;
     }
   if(!MathIsValidNumber(e.volume) || e.volume <= 0.0)
     {
      GuardRefuse(d, "BAD_VOLUME", "volume=" + DoubleToString(e.volume, 8));
      return;
     }
   double asked = SizingFloorToStep(e.volume, sym.volume_step);
   double vol = asked;
   string code = "OK";
   // risk cap
   double risk_money = a.equity * l.max_risk_pct / 100.0;
   double risk_vol = SizingFloorToStep(risk_money / e.loss_per_lot, sym.volume_step);
   if(risk_vol < vol)
     {
      vol = risk_vol;
      code = "RISK_CAP";
     }
   // leverage cap (the tighter of the EA's ceiling and the verdict's cap)
   double cap = l.max_leverage;
   if(MathIsValidNumber(e.leverage_cap) && e.leverage_cap > 0.0 && e.leverage_cap < cap)
      cap = e.leverage_cap;
   double open_notional = MathIsValidNumber(a.open_notional) && a.open_notional > 0.0 ? a.open_notional : 0.0;
   double room = a.equity * cap - open_notional;
   double lev_vol = room > 0.0 ? SizingFloorToStep(room / npl, sym.volume_step) : 0.0;
   if(lev_vol < vol)
     {
      vol = lev_vol;
      code = "LEVERAGE_CAP";
     }
   // open-risk budget: equity if every open stop is hit, minus this trade's loss at its stop, must
   // stay at or above the daily-loss level and the drawdown level (and the equity floor)
   double open_risk = MathIsValidNumber(a.open_risk) && a.open_risk > 0.0 ? a.open_risk : 0.0;
   double worst = a.equity - open_risk;
   double daily_room = -1.0;
   if(s.day_start_equity > 0.0)
     {
      daily_room = worst - s.day_start_equity * (1.0 - l.daily_loss_pct / 100.0);
      double v = daily_room > 0.0 ? SizingFloorToStep(daily_room / e.loss_per_lot, sym.volume_step) : 0.0;
      if(v < vol)
        {
         vol = v;
         code = "DAILY_BUDGET";
        }
     }
   double dd_room = -1.0;
   if(s.hwm > 0.0)
     {
      double level = s.hwm * (1.0 - l.max_drawdown_pct / 100.0);
      if(l.equity_floor_pct > 0.0 && s.hwm * l.equity_floor_pct / 100.0 > level)
         level = s.hwm * l.equity_floor_pct / 100.0;
      dd_room = worst - level;
      double v = dd_room > 0.0 ? SizingFloorToStep(dd_room / e.loss_per_lot, sym.volume_step) : 0.0;
      if(v < vol)
        {
         vol = v;
         code = "DRAWDOWN_BUDGET";
        }
     }
   if(l.max_lot > 0.0)
     {
      double ml = SizingFloorToStep(l.max_lot, sym.volume_step);
      if(ml < vol)
        {
         vol = ml;
         code = "MAX_LOT";
        }
     }
   double vmax = SizingFloorToStep(sym.volume_max, sym.volume_step);
   if(vmax < vol)
     {
      vol = vmax;
      code = "VOLUME_MAX";
     }
   string ctx = "asked=" + DoubleToString(e.volume, 8) + " risk_vol=" + DoubleToString(risk_vol, 2) +
                " leverage_vol=" + DoubleToString(lev_vol, 2) + " leverage_cap=" + DoubleToString(cap, 0) +
                " open_risk=" + DoubleToString(open_risk, 2) + " daily_room=" + DoubleToString(daily_room, 2) +
                " drawdown_room=" + DoubleToString(dd_room, 2);
   if(vol < sym.volume_min)
     {
      GuardRefuse(d, code == "OK" ? "BELOW_MIN" : code, ctx + " volume_min=" + DoubleToString(sym.volume_min, 2));
      return;
     }
   d.allowed = true;
   d.cut = code != "OK";
   d.volume = vol;
   d.code = code;
   d.detail = ctx;
  }

// ---- persistence: a small line format; the EA does the file I/O ----

string GuardStateSerialize(const GuardState &s)
  {
   string out = "v=1\n";
   out += "day_start=" + IntegerToString(s.day_start) + "\n";
   out += "day_start_equity=" + DoubleToString(s.day_start_equity, 8) + "\n";
   out += "hwm=" + DoubleToString(s.hwm, 8) + "\n";
   out += "seen=" + IntegerToString(s.seen) + "\n";
   if(s.floor_time > 0)
      out += "floor=" + IntegerToString(s.floor_time) + "\n";
   for(int i = 0; i < s.sig_count; i++)
      if(GuardSignalIdValid(s.sig_id[i]))
         out += "sig=" + IntegerToString(s.sig_time[i]) + " " + s.sig_id[i] + "\n";
   return out;
  }

// Reads GuardStateSerialize output. Returns false (state reset) when the text is not a valid state.
bool GuardStateParse(const string text, GuardState &s)
  {
   GuardStateReset(s);
   int n = StringLen(text);
   int pos = 0;
   bool version_ok = false;
   while(pos < n)
     {
      int eol = StringFind(text, "\n", pos);
      if(eol < 0)
         eol = n;
      string line = ScSubstr(text, pos, eol - pos);
      pos = eol + 1;
      if(StringLen(line) > 0 && StringGetCharacter(line, StringLen(line) - 1) == '\r')
         line = ScSubstr(line, 0, StringLen(line) - 1);
      if(line == "")
         continue;
      int eq = StringFind(line, "=");
      if(eq <= 0)
        {
         GuardStateReset(s);
         return false;
        }
      string key = ScSubstr(line, 0, eq);
      string val = StringSubstr(line, eq + 1);
      if(key == "v")
         version_ok = (val == "1");
      else
         if(key == "day_start")
            s.day_start = StringToInteger(val);
         else
            if(key == "day_start_equity")
               s.day_start_equity = StringToDouble(val);
            else
               if(key == "hwm")
                  s.hwm = StringToDouble(val);
               else
                  if(key == "seen")
                     s.seen = StringToInteger(val);
                  else
                     if(key == "floor")
                        s.floor_time = StringToInteger(val);
                     else
                  if(key == "sig")
                    {
                     int sp = StringFind(val, " ");
                     if(sp <= 0)
                        continue;
                     string id = StringSubstr(val, sp + 1);
                     if(!GuardSignalIdValid(id) || s.sig_count >= GUARD_MAX_SIGNALS)
                        continue;
                     s.sig_time[s.sig_count] = StringToInteger(ScSubstr(val, 0, sp));
                     s.sig_id[s.sig_count] = id;
                     s.sig_count++;
                    }
     }
   if(!version_ok || !MathIsValidNumber(s.day_start_equity) || !MathIsValidNumber(s.hwm) ||
      s.day_start_equity < 0.0 || s.hwm < 0.0)
     {
      GuardStateReset(s);
      return false;
     }
   return true;
  }

#endif
