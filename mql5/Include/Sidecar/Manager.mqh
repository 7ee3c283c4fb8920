//+------------------------------------------------------------------+
//| Manager.mqh -- local trade management: partial close, breakeven, |
//| trailing. Runs on every tick without the sidecar.                 |
//| Pure decision logic (position, prices, params, levels -> action)  |
//| in the MQL5/C++ common subset; the EA sends the orders.           |
//+------------------------------------------------------------------+
#ifndef SIDECAR_MANAGER_MQH
#define SIDECAR_MANAGER_MQH

#include "Sizing.mqh"

#define MANAGER_SIDE_BUY  1
#define MANAGER_SIDE_SELL -1
// R multiples are compared with this tolerance so that "exactly 1R" fires despite binary prices.
#define MANAGER_R_EPS 0.000000001

struct ManageParams
  {
   double            breakeven_r;       // move SL to entry (+offset) at this many R; <= 0 disables
   double            partial_r;         // close partial_fraction at this many R; <= 0 disables
   double            partial_fraction;  // (0, 1); anything else disables the partial close
   double            trail_atr;         // trailing distance in ATRs; <= 0 -> trail_distance
   double            trail_distance;    // trailing distance in price units; <= 0 disables trailing
   double            breakeven_offset;  // price units beyond entry for the breakeven stop (>= 0)
  };

struct ManagePosition
  {
   int               side;              // MANAGER_SIDE_BUY / MANAGER_SIDE_SELL
   double            volume;
   double            price_open;
   double            sl;                // 0 = none
   double            tp;                // 0 = none
   double            risk_distance;     // |open - initial SL|; <= 0 = unknown (derived from sl when on the loss side)
   bool              partial_done;
  };

struct ManageMarket
  {
   double            bid;
   double            ask;
   double            atr;               // in price units; <= 0 = unavailable
   double            point;
   double            tick_size;
   int               digits;
   int               stops_level;       // points
   int               freeze_level;      // points
   double            volume_min;
   double            volume_step;
  };

struct ManageAction
  {
   double            close_volume;      // > 0: close this much now
   bool              modify;            // true: move the SL to new_sl (TP unchanged)
   double            new_sl;
   string            reason;            // codes of what fired / was held back, space separated
  };

void ManageParamsDefaults(ManageParams &p)
  {
   p.breakeven_r = 1.0;
   p.partial_r = 1.0;
   p.partial_fraction = 0.5;
   p.trail_atr = 2.0;
   p.trail_distance = 0.0;
   p.breakeven_offset = 0.0;
  }

void ManagerAddReason(ManageAction &a, const string code)
  {
   if(a.reason != "")
      a.reason += " ";
   a.reason += code;
  }

// Price rounded to the tick grid, away from the market (a stop never ends up closer than asked).
double ManagerStopToTick(const double price, const double tick, const int digits, const int side)
  {
   if(tick <= 0.0)
      return NormalizeDouble(price, digits);
   double n = price / tick;
   double k = (side == MANAGER_SIDE_BUY) ? MathFloor(n + 0.0000001) : MathCeil(n - 0.0000001);
   return NormalizeDouble(k * tick, digits);
  }

void ManagerDecide(const ManagePosition &pos, const ManageMarket &m, const ManageParams &p, ManageAction &a)
  {
   a.close_volume = 0.0;
   a.modify = false;
   a.new_sl = pos.sl;
   a.reason = "";
   if(!(m.bid > 0.0 && m.ask > 0.0 && m.point > 0.0 && pos.price_open > 0.0 && pos.volume > 0.0) ||
      (pos.side != MANAGER_SIDE_BUY && pos.side != MANAGER_SIDE_SELL))
     {
      ManagerAddReason(a, "BAD_INPUT");
      return;
     }
   bool buy = pos.side == MANAGER_SIDE_BUY;
   double close_px = buy ? m.bid : m.ask;           // the price that closes the position
   double profit = buy ? close_px - pos.price_open : pos.price_open - close_px;
   double risk = pos.risk_distance;
   if(risk <= 0.0 && pos.sl > 0.0)
     {
      double d = buy ? pos.price_open - pos.sl : pos.sl - pos.price_open;
      if(d > 0.0)
         risk = d;
     }
   double r_mult = risk > 0.0 ? profit / risk : 0.0;
   double freeze = m.freeze_level * m.point;
   // stops_level 0 often means a floating level: keep at least the current spread away
   double stops = MathMax(m.stops_level * m.point, m.ask - m.bid);
   // Freeze level: no close and no modification while the price is within it of SL or TP.
   bool frozen = false;
   if(freeze > 0.0)
     {
      if(pos.sl > 0.0 && (buy ? close_px - pos.sl : pos.sl - close_px) <= freeze)
         frozen = true;
      if(pos.tp > 0.0 && (buy ? pos.tp - close_px : close_px - pos.tp) <= freeze)
         frozen = true;
     }
   bool partial_enabled = p.partial_r > 0.0 && p.partial_fraction > 0.0 && p.partial_fraction < 1.0;
   double part = SizingFloorToStep(pos.volume * p.partial_fraction, m.volume_step);
   double rest = NormalizeDouble(pos.volume - part, SizingStepDigits(m.volume_step));
   bool partial_possible = part >= m.volume_min && rest >= m.volume_min;
   // 1. partial close
   if(partial_enabled && !pos.partial_done && risk > 0.0 && r_mult >= p.partial_r - MANAGER_R_EPS)
     {
      if(!partial_possible)
         ManagerAddReason(a, "PARTIAL_TOO_SMALL");
      else
         if(frozen)
            ManagerAddReason(a, "PARTIAL_FROZEN");
         else
           {
            a.close_volume = part;
            ManagerAddReason(a, "PARTIAL");
           }
     }
   // 2. stop candidates: breakeven and trailing; the best improvement wins
   double cand = 0.0;
   bool have = false;
   string why = "";
   if(p.breakeven_r > 0.0 && risk > 0.0 && r_mult >= p.breakeven_r - MANAGER_R_EPS)
     {
      double off = p.breakeven_offset > 0.0 ? p.breakeven_offset : 0.0;
      cand = buy ? pos.price_open + off : pos.price_open - off;
      have = true;
      why = "BREAKEVEN";
     }
   double dist = 0.0;
   if(p.trail_atr > 0.0 && m.atr > 0.0)
      dist = p.trail_atr * m.atr;
   else
      if(p.trail_distance > 0.0)
         dist = p.trail_distance;
   // ATR trailing starts after the partial close, or at once when there is none to wait for
   // (disabled, volume too small to split, or R unknown so it can never fire)
   bool trail_active = pos.partial_done || a.close_volume > 0.0 || !partial_enabled || !partial_possible || risk <= 0.0;
   if(dist > 0.0 && trail_active)
     {
      double t = buy ? close_px - dist : close_px + dist;
      // trail only on the profit side of the entry
      if(buy ? t > pos.price_open : t < pos.price_open)
        {
         if(!have || (buy ? t > cand : t < cand))
           {
            cand = t;
            why = "TRAIL";
           }
         have = true;
        }
     }
   if(!have)
      return;
   // stops level: the new stop must be at least stops_level away from the closing price
   if(buy ? close_px - cand < stops : cand - close_px < stops)
     {
      cand = buy ? close_px - stops : close_px + stops;
      why += "_CLAMPED";
     }
   if(buy ? cand >= close_px : cand <= close_px)
     {
      ManagerAddReason(a, why + "_NO_ROOM");
      return;
     }
   cand = ManagerStopToTick(cand, m.tick_size, m.digits, pos.side);
   double tick = m.tick_size > 0.0 ? m.tick_size : m.point;
   bool improves = pos.sl <= 0.0 || (buy ? cand >= pos.sl + tick * 0.5 : cand <= pos.sl - tick * 0.5);
   if(!improves)
      return;
   if(frozen)
     {
      ManagerAddReason(a, why + "_FROZEN");
      return;
     }
   a.modify = true;
   a.new_sl = cand;
   ManagerAddReason(a, why);
  }

#endif
