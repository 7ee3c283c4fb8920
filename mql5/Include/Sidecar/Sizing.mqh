//+------------------------------------------------------------------+
//| Sizing.mqh -- lots from risk money and stop distance.             |
//| Pure logic in the MQL5/C++ common subset (tested with g++).       |
//| Rule: floor to the volume step, refuse below volume min, never    |
//| round up (MetaQuotes' CMoneyFixedRisk rounds up -- not here).     |
//+------------------------------------------------------------------+
#ifndef SIDECAR_SIZING_MQH
#define SIDECAR_SIZING_MQH

#include "Strings.mqh"

// Tolerance, in volume steps, for binary representation (0.29/0.01 = 28.999999999999996).
#define SIZING_STEP_EPS 0.0000001

#define SIZING_OK             0
#define SIZING_BAD_SPEC       1
#define SIZING_BAD_STOP       2
#define SIZING_BELOW_MIN      3
#define SIZING_NO_RISK_BUDGET 4

struct SizingSpec
  {
   double            tick_size;     // SYMBOL_TRADE_TICK_SIZE
   double            tick_value;    // SYMBOL_TRADE_TICK_VALUE_LOSS (account currency, 1 lot, 1 tick)
   double            volume_min;
   double            volume_step;
   double            volume_max;
  };

struct SizingResult
  {
   bool              ok;
   int               code;          // SIZING_*
   double            loss_per_lot;  // money lost by 1 lot between entry and stop
   double            raw_lots;      // risk_money / loss_per_lot, before the step
   double            lots;          // floored to the step, capped at volume_max; 0 when refused
  };

string SizingCodeName(const int code)
  {
   switch(code)
     {
      case SIZING_OK:
         return "OK";
      case SIZING_BAD_SPEC:
         return "BAD_SPEC";
      case SIZING_BAD_STOP:
         return "BAD_STOP";
      case SIZING_BELOW_MIN:
         return "BELOW_MIN";
      case SIZING_NO_RISK_BUDGET:
         return "NO_RISK_BUDGET";
     }
   return "UNKNOWN";
  }

// Number of decimals of a volume step (0.01 -> 2, 0.1 -> 1, 1 -> 0), at most 8.
int SizingStepDigits(const double step)
  {
   int d = 0;
   double s = step;
   while(d < 8 && MathAbs(s - MathRound(s)) > 0.0000001 * MathMax(1.0, MathAbs(s)))
     {
      s *= 10.0;
      d++;
     }
   return d;
  }

// Largest multiple of step that is <= volume (within SIZING_STEP_EPS of a step). 0 for bad input.
double SizingFloorToStep(const double volume, const double step)
  {
   if(!MathIsValidNumber(volume) || !MathIsValidNumber(step) || step <= 0.0 || volume <= 0.0)
      return 0.0;
   double n = MathFloor(volume / step + SIZING_STEP_EPS);
   return NormalizeDouble(n * step, SizingStepDigits(step));
  }

bool SizingSpecValid(const SizingSpec &spec)
  {
   return MathIsValidNumber(spec.tick_size) && spec.tick_size > 0.0 &&
          MathIsValidNumber(spec.tick_value) && spec.tick_value > 0.0 &&
          MathIsValidNumber(spec.volume_min) && spec.volume_min > 0.0 &&
          MathIsValidNumber(spec.volume_step) && spec.volume_step > 0.0 &&
          MathIsValidNumber(spec.volume_max) && spec.volume_max >= spec.volume_min;
  }

// Fallback loss per lot when OrderCalcProfit is unavailable: ticks to the stop x tick value.
double SizingLossPerLotFromTicks(const double entry, const double sl, const SizingSpec &spec)
  {
   if(!SizingSpecValid(spec) || !MathIsValidNumber(entry) || !MathIsValidNumber(sl) || entry <= 0.0 || sl <= 0.0)
      return 0.0;
   return MathAbs(entry - sl) / spec.tick_size * spec.tick_value;
  }

// Lots for a given risk budget. loss_per_lot comes from OrderCalcProfit (its negated result)
// or from SizingLossPerLotFromTicks.
void SizingLots(const double risk_money, const double loss_per_lot, const SizingSpec &spec, SizingResult &res)
  {
   res.ok = false;
   res.code = SIZING_OK;
   res.loss_per_lot = loss_per_lot;
   res.raw_lots = 0.0;
   res.lots = 0.0;
   if(!SizingSpecValid(spec))
     {
      res.code = SIZING_BAD_SPEC;
      return;
     }
   if(!MathIsValidNumber(loss_per_lot) || loss_per_lot <= 0.0)
     {
      res.code = SIZING_BAD_STOP;
      return;
     }
   if(!MathIsValidNumber(risk_money) || risk_money <= 0.0)
     {
      res.code = SIZING_NO_RISK_BUDGET;
      return;
     }
   res.raw_lots = risk_money / loss_per_lot;
   double lots = SizingFloorToStep(res.raw_lots, spec.volume_step);
   if(lots > spec.volume_max)
      lots = SizingFloorToStep(spec.volume_max, spec.volume_step);
   if(lots < spec.volume_min)
     {
      res.code = SIZING_BELOW_MIN;
      return;
     }
   res.lots = lots;
   res.ok = true;
  }

// Convenience: risk as a percentage of equity, loss per lot from ticks.
void SizingLotsForRiskPct(const double equity, const double risk_pct, const double entry, const double sl,
                          const SizingSpec &spec, SizingResult &res)
  {
   double loss = SizingLossPerLotFromTicks(entry, sl, spec);
   double money = (MathIsValidNumber(equity) && MathIsValidNumber(risk_pct)) ? equity * risk_pct / 100.0 : 0.0;
   SizingLots(money, loss, spec, res);
  }

// An entry's stop or target on the symbol's tick grid (digits alone do not make a price valid when
// the tick size is larger than the point), rounded TOWARD the entry: the stop then never ends up
// farther away than the one the risk was sized on. Buy: stop up, target down; sell: the reverse.
double SizingEntryPriceToTick(const double price, const double tick, const int digits, const bool round_up)
  {
   if(!MathIsValidNumber(price) || price <= 0.0)
      return 0.0;
   if(!MathIsValidNumber(tick) || tick <= 0.0)
      return NormalizeDouble(price, digits);
   double n = price / tick;
   double k = round_up ? MathCeil(n - SIZING_STEP_EPS) : MathFloor(n + SIZING_STEP_EPS);
   return NormalizeDouble(k * tick, digits);
  }

#ifdef __MQL5__
// Terminal part (MQL5 only): money lost by 1 lot between entry and stop, from OrderCalcProfit
// (handles currency conversion); falls back to ticks x SYMBOL_TRADE_TICK_VALUE_LOSS. 0 when the
// stop is not on the losing side.
double SizingLossPerLot(const string symbol, const bool buy, const double entry, const double sl)
  {
   if(!(entry > 0.0 && sl > 0.0) || (buy ? sl >= entry : sl <= entry))
      return 0.0;
   double profit = 0.0;
   if(OrderCalcProfit(buy ? ORDER_TYPE_BUY : ORDER_TYPE_SELL, symbol, 1.0, entry, sl, profit) && profit < 0.0)
      return -profit;
   SizingSpec spec;
   spec.tick_size = SymbolInfoDouble(symbol, SYMBOL_TRADE_TICK_SIZE);
   spec.tick_value = SymbolInfoDouble(symbol, SYMBOL_TRADE_TICK_VALUE_LOSS);
   spec.volume_min = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MIN);
   spec.volume_step = SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP);
   spec.volume_max = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MAX);
   return SizingLossPerLotFromTicks(entry, sl, spec);
  }
#endif

#endif
