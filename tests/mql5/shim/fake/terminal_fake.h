// terminal_fake.h -- a behavioural fake of the MetaTrader 5 terminal and its trade server, written
// from the MQL5 reference, defining the API that mql5_terminal_stub.h declares so that
// Executor.mqh, Transport.mqh and SidecarEA.mq5 run under g++ (one translation unit per driver).
//
// What it models (all of it configurable per test through g_fk):
//  * the trade server and the terminal's view of it are two states: OrderSend answers at once
//    (DONE, with result.deal / result.order), but the terminal's position list is updated
//    `pos_delay` ticks later and the deal enters the history `deal_delay` ticks later (FakeTick);
//  * netting (one position per symbol: deals add, reduce, close or reverse it) and hedging (one
//    position per entry) accounts; a deal naming a position (request.position) only closes or
//    reduces that position, and is refused (10036) when it is gone; before the login (login 0)
//    the account reads as netting, as a terminal without its account does;
//  * filling modes per symbol: FOK / IOC flags, RETURN refused under Market execution (10030);
//    FOK without enough liquidity is rejected, IOC fills what there is (10010);
//  * the retcodes a server gives: REQUOTE 10004, REJECT 10006, DONE_PARTIAL 10010, INVALID_STOPS
//    10016 (stops level), MARKET_CLOSED 10018, NO_MONEY 10019, PRICE_CHANGED 10020, TOO_MANY_REQUESTS
//    10024 (more requests in one tick than `max_requests_per_tick`), FROZEN 10029 (freeze level),
//    POSITION_CLOSED 10036, trade disabled 10017 / 10027; scripted ones through `script`;
//  * a stop that fills on the server between two of the EA's calls (FakeFillStop, or
//    `stop_fill_before_next_send`);
//  * PositionSelect* copy the position's data (later PositionGet* calls read that copy); a netting
//    reversal gives the position the reversing order's ticket and keeps its POSITION_IDENTIFIER;
//    HistoryDeal* read only what HistorySelect / HistoryDealSelect selected;
//  * a broker that fills an entry without its stop (`drop_sl_on_fill`);
//  * global variables (terminal-wide: one map shared by every chart, kept across EA restarts),
//    files, a clock, and libzmq with a scripted sidecar (latency vs RCVTIMEO).
#ifndef SIDECAR_TERMINAL_FAKE_H
#define SIDECAR_TERMINAL_FAKE_H

#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "mql5_terminal_stub.h"

struct FakeSymbol
{
   string name = "EURUSD";
   double bid = 1.10000;
   double ask = 1.10010;
   int digits = 5;
   double point = 0.00001;
   double tick_size = 0.00001;
   double tick_value = 1.0;
   double contract = 100000.0;
   double vol_min = 0.01;
   double vol_step = 0.01;
   double vol_max = 100.0;
   long stops_level = 0;
   long freeze_level = 0;
   long filling = SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC;
   long exemode = SYMBOL_TRADE_EXECUTION_MARKET;
   long order_mode = SYMBOL_ORDER_MARKET | SYMBOL_ORDER_SL | SYMBOL_ORDER_TP;
   long trade_mode = SYMBOL_TRADE_MODE_FULL;
   double liquidity = 1e9;   // lots available at the quote (FOK / IOC)
};

struct FakePosition
{
   ulong ticket = 0;
   ulong identifier = 0;   // POSITION_IDENTIFIER; 0 = the ticket (they differ after a netting reversal)
   string symbol;
   int type = POSITION_TYPE_BUY;
   double volume = 0.0;
   double price_open = 0.0;
   double sl = 0.0;
   double tp = 0.0;
   ulong magic = 0;
   string comment;
   long time = 0;
};

struct FakeDeal
{
   ulong ticket = 0;
   ulong order = 0;
   ulong position_id = 0;
   string symbol;
   int type = DEAL_TYPE_BUY;
   int entry = DEAL_ENTRY_IN;
   int reason = DEAL_REASON_EXPERT;
   double volume = 0.0;
   double price = 0.0;
   double profit = 0.0;
   ulong magic = 0;
   string comment;
   long time = 0;
   long visible_at = 0;   // tick from which the terminal's history shows it
};

struct FakeSend
{
   MqlTradeRequest request;
   uint retcode;
};

struct FakeFile
{
   string name;
   string content;
   size_t pos = 0;
   bool write = false;
};

struct FakeTerminal
{
   // account and terminal
   long login = 5550001;
   long margin_mode = ACCOUNT_MARGIN_MODE_RETAIL_HEDGING;
   long leverage = 100;
   double balance = 10000.0;
   bool connected = true;
   bool terminal_trade_allowed = true;
   bool mql_trade_allowed = true;
   bool account_trade_allowed = true;
   bool account_trade_expert = true;
   bool tester = false;
   bool dlls_allowed = true;
   // market
   std::map<string, FakeSymbol> symbols;
   bool market_open = true;
   // server behaviour
   int pos_delay = 0;      // ticks before the terminal's position list shows a trade
   int deal_delay = 0;     // ticks before the history shows its deal
   int max_requests_per_tick = 1000;
   bool stop_fill_before_next_send = false;
   bool no_money = false;
   bool drop_sl_on_fill = false;   // a broker that fills market entries without their stop
   std::deque<uint> script;   // forced retcodes for the next sends (0 = no forcing)
   // server state and the terminal's view
   std::vector<FakePosition> srv_positions;
   std::vector<FakePosition> vis_positions;
   std::vector<FakeDeal> deals;
   long sync_at = -1;        // tick at which vis_positions catches up with the server
   long tick = 0;
   long requests_this_tick = 0;
   ulong next_ticket = 1000;
   ulong next_deal = 50000;
   std::vector<FakeSend> sends;
   // selection
   FakePosition selected;
   bool has_selected = false;
   std::vector<ulong> history_selection;
   // clock (seconds)
   long now = 1765000000;
   ulong tick_count_ms = 1000000;
   // globals, files, log
   std::map<string, double> globals;
   std::map<string, string> files;
   std::map<int, FakeFile> handles;
   int next_handle = 1;
   int last_error = 0;
   std::vector<string> log;
   std::vector<string> file_checks;   // names FileIsExist was asked about

   FakeSymbol &Sym(const string &name)
   {
      if(symbols.find(name) == symbols.end())
      {
         FakeSymbol s;
         s.name = name;
         symbols[name] = s;
      }
      return symbols[name];
   }
};

static FakeTerminal g_fk;

// ---------------------------------------------------------------- server side

inline void FakeSyncPositions()
{
   g_fk.vis_positions = g_fk.srv_positions;
   g_fk.sync_at = -1;
}

inline void FakeScheduleSync()
{
   if(g_fk.pos_delay <= 0)
      FakeSyncPositions();
   else if(g_fk.sync_at < 0)
      g_fk.sync_at = g_fk.tick + g_fk.pos_delay;
}

// One tick of time: the terminal catches up with the server when its delay has passed.
inline void FakeTick(long seconds = 1)
{
   g_fk.tick++;
   g_fk.requests_this_tick = 0;
   g_fk.now += seconds;
   g_fk.tick_count_ms += (ulong)(seconds * 1000);
   if(g_fk.sync_at >= 0 && g_fk.tick >= g_fk.sync_at)
      FakeSyncPositions();
}

inline FakePosition *FakeServerPosition(ulong ticket)
{
   for(FakePosition &p : g_fk.srv_positions)
      if(p.ticket == ticket)
         return &p;
   return nullptr;
}

inline void FakeAddDeal(const FakePosition &pos, int type, int entry, double volume, double price, ulong order, int reason,
                        const string &comment, ulong magic)
{
   FakeDeal d;
   d.ticket = g_fk.next_deal++;
   d.order = order;
   d.position_id = pos.identifier != 0 ? pos.identifier : pos.ticket;
   d.symbol = pos.symbol;
   d.type = type;
   d.entry = entry;
   d.reason = reason;
   d.volume = volume;
   d.price = price;
   d.magic = magic;
   d.comment = comment;
   d.time = g_fk.now;
   d.visible_at = g_fk.tick + g_fk.deal_delay;
   if(entry != DEAL_ENTRY_IN)
   {
      double diff = pos.type == POSITION_TYPE_BUY ? price - pos.price_open : pos.price_open - price;
      FakeSymbol &s = g_fk.Sym(pos.symbol);
      d.profit = diff / s.tick_size * s.tick_value * volume;
      g_fk.balance += d.profit;
   }
   g_fk.deals.push_back(d);
}

inline void FakeRemoveServerPosition(ulong ticket)
{
   for(size_t i = 0; i < g_fk.srv_positions.size(); i++)
      if(g_fk.srv_positions[i].ticket == ticket)
      {
         g_fk.srv_positions.erase(g_fk.srv_positions.begin() + (long)i);
         return;
      }
}

// The server fills a position's stop loss (an SL deal), whatever the EA is doing.
inline bool FakeFillStop(ulong ticket)
{
   FakePosition *p = FakeServerPosition(ticket);
   if(p == nullptr || p->sl <= 0.0)
      return false;
   FakePosition copy = *p;
   FakeAddDeal(copy, copy.type == POSITION_TYPE_BUY ? DEAL_TYPE_SELL : DEAL_TYPE_BUY, DEAL_ENTRY_OUT, copy.volume, copy.sl, 0,
               DEAL_REASON_SL, "[sl]", copy.magic);
   FakeRemoveServerPosition(ticket);
   FakeScheduleSync();
   return true;
}

inline double FakeRoundVolume(double v, double step) { return std::floor(v / step + 1e-9) * step; }

inline bool FakeFrozen(const FakePosition &p, const FakeSymbol &s)
{
   if(s.freeze_level <= 0)
      return false;
   double freeze = (double)s.freeze_level * s.point;
   double px = p.type == POSITION_TYPE_BUY ? s.bid : s.ask;
   if(p.sl > 0.0 && std::fabs(px - p.sl) <= freeze + 1e-12)
      return true;
   if(p.tp > 0.0 && std::fabs(p.tp - px) <= freeze + 1e-12)
      return true;
   return false;
}

// Stops of a buy are checked against the bid, of a sell against the ask (stops level).
inline bool FakeStopsOk(int pos_type, double sl, double tp, const FakeSymbol &s)
{
   double ref = pos_type == POSITION_TYPE_BUY ? s.bid : s.ask;
   double min = (double)s.stops_level * s.point;
   if(pos_type == POSITION_TYPE_BUY)
      return (sl <= 0.0 || ref - sl >= min - 1e-12) && (tp <= 0.0 || tp - ref >= min - 1e-12) && (sl <= 0.0 || sl < ref) &&
             (tp <= 0.0 || tp > ref);
   return (sl <= 0.0 || sl - ref >= min - 1e-12) && (tp <= 0.0 || ref - tp >= min - 1e-12) && (sl <= 0.0 || sl > ref) &&
          (tp <= 0.0 || tp < ref);
}

inline uint FakeExecute(const MqlTradeRequest &rq, MqlTradeResult &rs)
{
   FakeSymbol &s = g_fk.Sym(rq.symbol);
   if(rq.action == TRADE_ACTION_SLTP)
   {
      FakePosition *p = FakeServerPosition(rq.position);
      if(p == nullptr)
         return TRADE_RETCODE_POSITION_CLOSED;
      if(!g_fk.market_open)
         return TRADE_RETCODE_MARKET_CLOSED;
      if(FakeFrozen(*p, s))
         return TRADE_RETCODE_FROZEN;
      if(std::fabs(p->sl - rq.sl) < s.point * 0.5 && std::fabs(p->tp - rq.tp) < s.point * 0.5)
         return TRADE_RETCODE_NO_CHANGES;
      if(!FakeStopsOk(p->type, rq.sl, rq.tp, s))
         return TRADE_RETCODE_INVALID_STOPS;
      p->sl = rq.sl;
      p->tp = rq.tp;
      FakeScheduleSync();
      return TRADE_RETCODE_DONE;
   }
   if(rq.action != TRADE_ACTION_DEAL)
      return TRADE_RETCODE_INVALID;
   if(!g_fk.market_open)
      return TRADE_RETCODE_MARKET_CLOSED;
   if(s.trade_mode == SYMBOL_TRADE_MODE_DISABLED)
      return TRADE_RETCODE_TRADE_DISABLED;
   if(rq.type_filling == ORDER_FILLING_RETURN && s.exemode == SYMBOL_TRADE_EXECUTION_MARKET)
      return TRADE_RETCODE_INVALID_FILL;
   if((rq.type_filling == ORDER_FILLING_FOK && (s.exemode == SYMBOL_TRADE_EXECUTION_MARKET || s.exemode == SYMBOL_TRADE_EXECUTION_EXCHANGE) &&
       (s.filling & SYMBOL_FILLING_FOK) == 0) ||
      (rq.type_filling == ORDER_FILLING_IOC && (s.exemode == SYMBOL_TRADE_EXECUTION_MARKET || s.exemode == SYMBOL_TRADE_EXECUTION_EXCHANGE) &&
       (s.filling & SYMBOL_FILLING_IOC) == 0))
      return TRADE_RETCODE_INVALID_FILL;
   double steps = rq.volume / s.vol_step;
   if(rq.volume < s.vol_min - 1e-9 || rq.volume > s.vol_max + 1e-9 || std::fabs(steps - std::round(steps)) > 1e-6)
      return TRADE_RETCODE_INVALID_VOLUME;
   bool buy = rq.type == ORDER_TYPE_BUY;
   double px = buy ? s.ask : s.bid;
   if(rq.price > 0.0 && std::fabs(rq.price - px) > (double)rq.deviation * s.point + 1e-12)
      return TRADE_RETCODE_REQUOTE;
   double volume = rq.volume;
   uint done = TRADE_RETCODE_DONE;
   if(volume > s.liquidity + 1e-9)
   {
      if(rq.type_filling == ORDER_FILLING_FOK)
         return TRADE_RETCODE_REJECT;
      volume = FakeRoundVolume(s.liquidity, s.vol_step);
      if(volume < s.vol_min - 1e-9)
         return TRADE_RETCODE_REJECT;
      done = TRADE_RETCODE_DONE_PARTIAL;
   }
   ulong order = g_fk.next_ticket++;
   // a deal naming a position closes or reduces that position, never anything else
   FakePosition *target = nullptr;
   if(rq.position != 0)
   {
      target = FakeServerPosition(rq.position);
      if(target == nullptr)
         return TRADE_RETCODE_POSITION_CLOSED;
      if((target->type == POSITION_TYPE_BUY) == buy)
         return TRADE_RETCODE_INVALID;
      if(volume > target->volume + 1e-9)
         return TRADE_RETCODE_INVALID_CLOSE_VOLUME;
      if(FakeFrozen(*target, s))
         return TRADE_RETCODE_FROZEN;
   }
   else if(g_fk.margin_mode != ACCOUNT_MARGIN_MODE_RETAIL_HEDGING)
   {
      for(FakePosition &p : g_fk.srv_positions)
         if(p.symbol == rq.symbol)
            target = &p;
   }
   if(target == nullptr || (target->type == POSITION_TYPE_BUY) == buy)
   {
      // opens (or adds to a netting position)
      if(g_fk.no_money)
         return TRADE_RETCODE_NO_MONEY;
      if(s.trade_mode == SYMBOL_TRADE_MODE_CLOSEONLY || (s.trade_mode == SYMBOL_TRADE_MODE_LONGONLY && !buy) ||
         (s.trade_mode == SYMBOL_TRADE_MODE_SHORTONLY && buy))
         return TRADE_RETCODE_TRADE_DISABLED;
      if(!FakeStopsOk(buy ? POSITION_TYPE_BUY : POSITION_TYPE_SELL, rq.sl, rq.tp, s))
         return TRADE_RETCODE_INVALID_STOPS;
      if(target == nullptr)
      {
         FakePosition p;
         p.ticket = order;   // a position's ticket is the ticket of the order that opened it
         p.symbol = rq.symbol;
         p.type = buy ? POSITION_TYPE_BUY : POSITION_TYPE_SELL;
         p.volume = volume;
         p.price_open = px;
         p.sl = g_fk.drop_sl_on_fill ? 0.0 : rq.sl;
         p.tp = rq.tp;
         p.magic = rq.magic;
         p.comment = rq.comment;
         p.time = g_fk.now;
         g_fk.srv_positions.push_back(p);
         target = &g_fk.srv_positions.back();
      }
      else
      {
         target->price_open = (target->price_open * target->volume + px * volume) / (target->volume + volume);
         target->volume += volume;
         if(rq.sl > 0.0)
            target->sl = rq.sl;
         if(rq.tp > 0.0)
            target->tp = rq.tp;
      }
      FakeAddDeal(*target, buy ? DEAL_TYPE_BUY : DEAL_TYPE_SELL, DEAL_ENTRY_IN, volume, px, order, DEAL_REASON_EXPERT, rq.comment,
                  rq.magic);
   }
   else
   {
      // reduces, closes or (netting, no position named) reverses
      FakePosition copy = *target;
      if(volume < target->volume - 1e-9)
      {
         FakeAddDeal(copy, buy ? DEAL_TYPE_BUY : DEAL_TYPE_SELL, DEAL_ENTRY_OUT, volume, px, order, DEAL_REASON_EXPERT, rq.comment,
                     rq.magic);
         target->volume = FakeRoundVolume(target->volume - volume + 1e-9, s.vol_step);
      }
      else if(volume <= target->volume + 1e-9)
      {
         FakeAddDeal(copy, buy ? DEAL_TYPE_BUY : DEAL_TYPE_SELL, DEAL_ENTRY_OUT, volume, px, order, DEAL_REASON_EXPERT, rq.comment,
                     rq.magic);
         FakeRemoveServerPosition(copy.ticket);
      }
      else
      {
         FakeAddDeal(copy, buy ? DEAL_TYPE_BUY : DEAL_TYPE_SELL, DEAL_ENTRY_INOUT, volume, px, order, DEAL_REASON_EXPERT, rq.comment,
                     rq.magic);
         // a reversal keeps the position's identifier; its ticket becomes the reversing order's
         if(target->identifier == 0)
            target->identifier = target->ticket;
         target->ticket = order;
         target->type = buy ? POSITION_TYPE_BUY : POSITION_TYPE_SELL;
         target->volume = FakeRoundVolume(volume - copy.volume + 1e-9, s.vol_step);
         target->price_open = px;
         target->sl = rq.sl;
         target->tp = rq.tp;
      }
   }
   rs.deal = g_fk.deals.back().ticket;
   rs.order = order;
   rs.volume = volume;
   rs.price = px;
   FakeScheduleSync();
   return done;
}

bool OrderSend(const MqlTradeRequest &rq, MqlTradeResult &rs)
{
   ZeroMemory(rs);
   FakeSymbol &s = g_fk.Sym(rq.symbol);
   rs.bid = s.bid;
   rs.ask = s.ask;
   if(!g_fk.terminal_trade_allowed || !g_fk.mql_trade_allowed)
      rs.retcode = TRADE_RETCODE_CLIENT_DISABLES_AT;
   else if(!g_fk.account_trade_allowed || !g_fk.account_trade_expert)
      rs.retcode = TRADE_RETCODE_SERVER_DISABLES_AT;
   else if(!g_fk.connected)
      rs.retcode = TRADE_RETCODE_CONNECTION;
   else if(++g_fk.requests_this_tick > g_fk.max_requests_per_tick)
      rs.retcode = TRADE_RETCODE_TOO_MANY_REQUESTS;
   else
   {
      if(g_fk.stop_fill_before_next_send)
      {
         g_fk.stop_fill_before_next_send = false;
         for(FakePosition p : g_fk.srv_positions)
            if(p.symbol == rq.symbol && p.sl > 0.0)
            {
               FakeFillStop(p.ticket);
               break;
            }
      }
      uint forced = 0;
      if(!g_fk.script.empty())
      {
         forced = g_fk.script.front();
         g_fk.script.pop_front();
      }
      if(forced != 0 && forced != TRADE_RETCODE_DONE_PARTIAL)
         rs.retcode = forced;
      else
      {
         double keep = s.liquidity;
         if(forced == TRADE_RETCODE_DONE_PARTIAL)
            s.liquidity = FakeRoundVolume(rq.volume / 2.0, s.vol_step);
         rs.retcode = FakeExecute(rq, rs);
         s.liquidity = keep;
      }
   }
   FakeSend fs;
   fs.request = rq;
   fs.retcode = rs.retcode;
   g_fk.sends.push_back(fs);
   return rs.retcode == TRADE_RETCODE_DONE || rs.retcode == TRADE_RETCODE_DONE_PARTIAL || rs.retcode == TRADE_RETCODE_PLACED;
}

bool IsStopped() { return false; }

// ---------------------------------------------------------------- account, terminal, symbols

long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER p)
{
   switch(p)
   {
      case ACCOUNT_LOGIN: return g_fk.login;
      case ACCOUNT_LEVERAGE: return g_fk.leverage;
      case ACCOUNT_MARGIN_MODE: return g_fk.login == 0 ? (long)ACCOUNT_MARGIN_MODE_RETAIL_NETTING : g_fk.margin_mode;
      case ACCOUNT_TRADE_ALLOWED: return g_fk.account_trade_allowed ? 1 : 0;
      case ACCOUNT_TRADE_EXPERT: return g_fk.account_trade_expert ? 1 : 0;
   }
   return 0;
}

inline double FakeFloating()
{
   double f = 0.0;
   for(const FakePosition &p : g_fk.vis_positions)
   {
      FakeSymbol &s = g_fk.Sym(p.symbol);
      double px = p.type == POSITION_TYPE_BUY ? s.bid : s.ask;
      double diff = p.type == POSITION_TYPE_BUY ? px - p.price_open : p.price_open - px;
      f += diff / s.tick_size * s.tick_value * p.volume;
   }
   return f;
}

double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE p)
{
   switch(p)
   {
      case ACCOUNT_BALANCE: return g_fk.balance;
      case ACCOUNT_EQUITY: return g_fk.balance + FakeFloating();
      case ACCOUNT_MARGIN: return 0.0;
      case ACCOUNT_MARGIN_FREE: return g_fk.balance + FakeFloating();
      case ACCOUNT_PROFIT: return FakeFloating();
   }
   return 0.0;
}

string AccountInfoString(ENUM_ACCOUNT_INFO_STRING p)
{
   switch(p)
   {
      case ACCOUNT_SERVER: return "Fake-Server";
      case ACCOUNT_CURRENCY: return "USD";
      case ACCOUNT_NAME: return "fake";
      case ACCOUNT_COMPANY: return "fake";
   }
   return "";
}

long SymbolInfoInteger(const string &name, ENUM_SYMBOL_INFO_INTEGER p)
{
   FakeSymbol &s = g_fk.Sym(name);
   switch(p)
   {
      case SYMBOL_DIGITS: return s.digits;
      case SYMBOL_TRADE_STOPS_LEVEL: return s.stops_level;
      case SYMBOL_TRADE_FREEZE_LEVEL: return s.freeze_level;
      case SYMBOL_FILLING_MODE: return s.filling;
      case SYMBOL_TRADE_EXEMODE: return s.exemode;
      case SYMBOL_ORDER_MODE: return s.order_mode;
      case SYMBOL_TRADE_MODE: return s.trade_mode;
   }
   return 0;
}

double SymbolInfoDouble(const string &name, ENUM_SYMBOL_INFO_DOUBLE p)
{
   FakeSymbol &s = g_fk.Sym(name);
   switch(p)
   {
      case SYMBOL_POINT: return s.point;
      case SYMBOL_TRADE_TICK_SIZE: return s.tick_size;
      case SYMBOL_TRADE_TICK_VALUE:
      case SYMBOL_TRADE_TICK_VALUE_LOSS:
      case SYMBOL_TRADE_TICK_VALUE_PROFIT: return s.tick_value;
      case SYMBOL_TRADE_CONTRACT_SIZE: return s.contract;
      case SYMBOL_VOLUME_MIN: return s.vol_min;
      case SYMBOL_VOLUME_STEP: return s.vol_step;
      case SYMBOL_VOLUME_MAX: return s.vol_max;
      case SYMBOL_BID: return s.bid;
      case SYMBOL_ASK: return s.ask;
   }
   return 0.0;
}

string SymbolInfoString(const string &name, ENUM_SYMBOL_INFO_STRING p)
{
   switch(p)
   {
      case SYMBOL_CURRENCY_BASE: return name.substr(0, 3);
      case SYMBOL_CURRENCY_PROFIT: return name.size() >= 6 ? name.substr(3, 3) : "USD";
      case SYMBOL_CURRENCY_MARGIN: return name.substr(0, 3);
      case SYMBOL_DESCRIPTION: return name;
   }
   return "";
}

bool SymbolInfoTick(const string &name, MqlTick &t)
{
   FakeSymbol &s = g_fk.Sym(name);
   t = MqlTick();
   t.time = g_fk.now;
   t.time_msc = g_fk.now * 1000;
   t.bid = s.bid;
   t.ask = s.ask;
   return true;
}

bool SymbolSelect(const string &, bool) { return true; }

long MQLInfoInteger(ENUM_MQL_INFO_INTEGER p)
{
   switch(p)
   {
      case MQL_TESTER: return g_fk.tester ? 1 : 0;
      case MQL_DLLS_ALLOWED: return g_fk.dlls_allowed ? 1 : 0;
      case MQL_TRADE_ALLOWED: return g_fk.mql_trade_allowed ? 1 : 0;
      default: return 0;
   }
}

int TerminalInfoInteger(ENUM_TERMINAL_INFO_INTEGER p)
{
   switch(p)
   {
      case TERMINAL_CONNECTED: return g_fk.connected ? 1 : 0;
      case TERMINAL_DLLS_ALLOWED: return g_fk.dlls_allowed ? 1 : 0;
      case TERMINAL_TRADE_ALLOWED: return g_fk.terminal_trade_allowed ? 1 : 0;
   }
   return 0;
}

// ---------------------------------------------------------------- positions and orders (terminal view)

int PositionsTotal() { return (int)g_fk.vis_positions.size(); }

ulong PositionGetTicket(int i)
{
   if(i < 0 || i >= (int)g_fk.vis_positions.size())
      return 0;
   g_fk.selected = g_fk.vis_positions[(size_t)i];
   g_fk.has_selected = true;
   return g_fk.selected.ticket;
}

bool PositionSelectByTicket(ulong ticket)
{
   for(const FakePosition &p : g_fk.vis_positions)
      if(p.ticket == ticket)
      {
         g_fk.selected = p;
         g_fk.has_selected = true;
         return true;
      }
   g_fk.has_selected = false;
   return false;
}

// The symbol's position whatever its magic (on hedging: the first one listed).
bool PositionSelect(const string &symbol)
{
   for(const FakePosition &p : g_fk.vis_positions)
      if(p.symbol == symbol)
      {
         g_fk.selected = p;
         g_fk.has_selected = true;
         return true;
      }
   g_fk.has_selected = false;
   return false;
}

long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER p)
{
   if(!g_fk.has_selected)
      return 0;
   switch(p)
   {
      case POSITION_TICKET: return (long)g_fk.selected.ticket;
      case POSITION_IDENTIFIER: return (long)(g_fk.selected.identifier != 0 ? g_fk.selected.identifier : g_fk.selected.ticket);
      case POSITION_TIME: return g_fk.selected.time;
      case POSITION_TYPE: return g_fk.selected.type;
      case POSITION_MAGIC: return (long)g_fk.selected.magic;
   }
   return 0;
}

double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE p)
{
   if(!g_fk.has_selected)
      return 0.0;
   const FakePosition &q = g_fk.selected;
   FakeSymbol &s = g_fk.Sym(q.symbol);
   double px = q.type == POSITION_TYPE_BUY ? s.bid : s.ask;
   switch(p)
   {
      case POSITION_VOLUME: return q.volume;
      case POSITION_PRICE_OPEN: return q.price_open;
      case POSITION_SL: return q.sl;
      case POSITION_TP: return q.tp;
      case POSITION_PRICE_CURRENT: return px;
      case POSITION_SWAP: return 0.0;
      case POSITION_PROFIT: return (q.type == POSITION_TYPE_BUY ? px - q.price_open : q.price_open - px) / s.tick_size * s.tick_value * q.volume;
   }
   return 0.0;
}

string PositionGetString(ENUM_POSITION_PROPERTY_STRING p)
{
   if(!g_fk.has_selected)
      return "";
   return p == POSITION_SYMBOL ? g_fk.selected.symbol : g_fk.selected.comment;
}

int OrdersTotal() { return 0; }
ulong OrderGetTicket(int) { return 0; }
long OrderGetInteger(ENUM_ORDER_PROPERTY_INTEGER) { return 0; }
string OrderGetString(ENUM_ORDER_PROPERTY_STRING) { return ""; }

// ---------------------------------------------------------------- history (terminal view)

inline const FakeDeal *FakeVisibleDeal(ulong ticket)
{
   for(const FakeDeal &d : g_fk.deals)
      if(d.ticket == ticket && d.visible_at <= g_fk.tick)
         return &d;
   return nullptr;
}

bool HistoryDealSelect(ulong ticket)
{
   g_fk.history_selection.clear();
   if(FakeVisibleDeal(ticket) == nullptr)
      return false;
   g_fk.history_selection.push_back(ticket);
   return true;
}

bool HistorySelect(datetime from, datetime to)
{
   g_fk.history_selection.clear();
   for(const FakeDeal &d : g_fk.deals)
      if(d.visible_at <= g_fk.tick && d.time >= from && d.time <= to)
         g_fk.history_selection.push_back(d.ticket);
   return true;
}

int HistoryDealsTotal() { return (int)g_fk.history_selection.size(); }

ulong HistoryDealGetTicket(int i)
{
   if(i < 0 || i >= (int)g_fk.history_selection.size())
      return 0;
   return g_fk.history_selection[(size_t)i];
}

inline const FakeDeal *FakeSelectedDeal(ulong ticket)
{
   for(ulong t : g_fk.history_selection)
      if(t == ticket)
         return FakeVisibleDeal(ticket);
   return nullptr;
}

long HistoryDealGetInteger(ulong ticket, ENUM_DEAL_PROPERTY_INTEGER p)
{
   const FakeDeal *d = FakeSelectedDeal(ticket);
   if(d == nullptr)
      return 0;
   switch(p)
   {
      case DEAL_TICKET: return (long)d->ticket;
      case DEAL_ORDER: return (long)d->order;
      case DEAL_TIME: return d->time;
      case DEAL_TYPE: return d->type;
      case DEAL_ENTRY: return d->entry;
      case DEAL_MAGIC: return (long)d->magic;
      case DEAL_POSITION_ID: return (long)d->position_id;
      case DEAL_REASON: return d->reason;
   }
   return 0;
}

double HistoryDealGetDouble(ulong ticket, ENUM_DEAL_PROPERTY_DOUBLE p)
{
   const FakeDeal *d = FakeSelectedDeal(ticket);
   if(d == nullptr)
      return 0.0;
   switch(p)
   {
      case DEAL_VOLUME: return d->volume;
      case DEAL_PRICE: return d->price;
      case DEAL_PROFIT: return d->profit;
      default: return 0.0;
   }
}

string HistoryDealGetString(ulong ticket, ENUM_DEAL_PROPERTY_STRING p)
{
   const FakeDeal *d = FakeSelectedDeal(ticket);
   if(d == nullptr)
      return "";
   return p == DEAL_SYMBOL ? d->symbol : d->comment;
}

bool OrderCalcProfit(ENUM_ORDER_TYPE type, const string &name, double volume, double open, double close, double &profit)
{
   FakeSymbol &s = g_fk.Sym(name);
   double diff = type == ORDER_TYPE_BUY ? close - open : open - close;
   profit = diff / s.tick_size * s.tick_value * volume;
   return true;
}

// ---------------------------------------------------------------- time, bars, indicators

datetime TimeCurrent() { return g_fk.now; }
datetime TimeTradeServer() { return g_fk.now; }
datetime TimeGMT() { return g_fk.now; }
ENUM_TIMEFRAMES Period() { return PERIOD_H1; }
string EnumToString(ENUM_TIMEFRAMES tf)
{
   switch(tf)
   {
      case PERIOD_M1: return "PERIOD_M1";
      case PERIOD_M15: return "PERIOD_M15";
      case PERIOD_D1: return "PERIOD_D1";
      default: return "PERIOD_H1";
   }
}
int CopyRates(const string &, ENUM_TIMEFRAMES, int start, int count, MqlArray<MqlRates> &out)
{
   ArrayResize(out, count);
   for(int i = 0; i < count; i++)
   {
      MqlRates r = MqlRates();
      r.time = (g_fk.now / 3600 - (start + count - i)) * 3600;
      r.open = r.high = r.low = r.close = 1.1;
      r.tick_volume = 100;
      out[i] = r;
   }
   return count;
}
int CopyRates(const string &, ENUM_TIMEFRAMES, datetime, datetime, MqlArray<MqlRates> &out)
{
   ArrayResize(out, 0);
   return 0;
}
datetime iTime(const string &, ENUM_TIMEFRAMES, int shift) { return (g_fk.now / 3600 - shift) * 3600; }
int iATR(const string &, ENUM_TIMEFRAMES, int) { return INVALID_HANDLE; }
int CopyBuffer(int, int, int, int, MqlArray<double> &) { return -1; }
bool IndicatorRelease(int) { return true; }
bool EventSetTimer(int) { return true; }
void EventKillTimer() {}
void Comment(const string &) {}
int GetLastError() { return g_fk.last_error; }
ulong GetTickCount64() { return g_fk.tick_count_ms; }
void ResetLastError() { g_fk.last_error = 0; }

// ---------------------------------------------------------------- global variables and files

datetime GlobalVariableSet(const string &name, double v)
{
   g_fk.globals[name] = v;
   return g_fk.now;
}
double GlobalVariableGet(const string &name) { return g_fk.globals.count(name) ? g_fk.globals[name] : 0.0; }
bool GlobalVariableCheck(const string &name) { return g_fk.globals.count(name) != 0; }
bool GlobalVariableDel(const string &name) { return g_fk.globals.erase(name) != 0; }
void GlobalVariablesFlush() {}

int FileOpen(const string &name, int flags, ushort, uint)
{
   FakeFile f;
   f.name = name;
   f.write = (flags & FILE_WRITE) != 0;
   if(!f.write)
   {
      if(!g_fk.files.count(name))
         return INVALID_HANDLE;
      f.content = g_fk.files[name];
   }
   int h = g_fk.next_handle++;
   g_fk.handles[h] = f;
   return h;
}
void FileClose(int h)
{
   if(!g_fk.handles.count(h))
      return;
   FakeFile &f = g_fk.handles[h];
   if(f.write)
      g_fk.files[f.name] = f.content;
   g_fk.handles.erase(h);
}
bool FileIsExist(const string &name)
{
   g_fk.file_checks.push_back(name);
   return g_fk.files.count(name) != 0;
}
bool FileIsEnding(int h) { return !g_fk.handles.count(h) || g_fk.handles[h].pos >= g_fk.handles[h].content.size(); }
string FileReadString(int h)
{
   FakeFile &f = g_fk.handles[h];
   size_t eol = f.content.find('\n', f.pos);
   string line = f.content.substr(f.pos, eol == std::string::npos ? std::string::npos : eol - f.pos);
   f.pos = eol == std::string::npos ? f.content.size() : eol + 1;
   return line;
}
uint FileWriteString(int h, const string &text)
{
   g_fk.handles[h].content += text;
   return (uint)text.size();
}
bool FolderCreate(const string &) { return true; }
bool FileMove(const string &from, int, const string &to, int)
{
   if(!g_fk.files.count(from))
      return false;
   g_fk.files[to] = g_fk.files[from];
   g_fk.files.erase(from);
   return true;
}
int StringSplit(const string &s, ushort sep, MqlArray<string> &out)
{
   ArrayResize(out, 0);
   size_t start = 0;
   while(true)
   {
      size_t p = s.find((char)sep, start);
      out.v.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
      if(p == std::string::npos)
         break;
      start = p + 1;
   }
   return ArraySize(out);
}
int CalendarValueHistory(MqlArray<MqlCalendarValue> &out, datetime, datetime, const char *, const string &)
{
   ArrayResize(out, 0);
   return 0;
}
bool CalendarEventById(ulong, MqlCalendarEvent &) { return false; }

template <class C>
int StringToCharArray(const string &s, MqlArray<C> &out, int, int, uint)
{
   ArrayResize(out, (int)s.size() + 1);
   for(size_t i = 0; i < s.size(); i++)
      out[(int)i] = (C)s[i];
   out[(int)s.size()] = 0;
   return (int)s.size() + 1;
}
template <class C>
string CharArrayToString(const MqlArray<C> &a, int start, int count, uint)
{
   string out;
   int end = count < 0 ? ArraySize(a) : start + count;
   for(int i = start; i < end && i < ArraySize(a); i++)
   {
      if(a[i] == 0)
         break;
      out += (char)a[i];
   }
   return out;
}

// ---------------------------------------------------------------- the sidecar, over libzmq or HTTP

// The fake sidecar: answers a request (type from its JSON, or the HTTP path) with a reply and a
// latency in ms; a latency above the socket's RCVTIMEO (or the WebRequest timeout) is a timeout.
struct FakeReply
{
   string text;
   int latency_ms = 1;
};
static std::function<FakeReply(const string &request)> g_fake_sidecar;
struct FakeZmq
{
   std::map<long, int> rcvtimeo;
   std::map<long, string> pending;
   std::vector<int> timeouts_seen;   // RCVTIMEO in force at each zmq_recv
   long next_socket = 100;
   int requests = 0;
   std::vector<string> urls;
};
static FakeZmq g_fz;

long zmq_ctx_new() { return 1; }
int zmq_ctx_term(long) { return 0; }
long zmq_socket(long, int) { return g_fz.next_socket++; }
int zmq_close(long s)
{
   g_fz.pending.erase(s);
   return 0;
}
int zmq_connect(long, const MqlArray<uchar> &) { return 0; }
int zmq_setsockopt(long s, int option, const int &value, ulong)
{
   if(option == 27)
      g_fz.rcvtimeo[s] = value;
   return 0;
}
int zmq_send(long s, const MqlArray<uchar> &buf, ulong len, int)
{
   string text;
   for(ulong i = 0; i < len; i++)
      text += (char)buf[(int)i];
   g_fz.pending[s] = text;
   return (int)len;
}
int zmq_recv(long s, MqlArray<uchar> &buf, ulong len, int)
{
   g_fz.requests++;
   int timeout = g_fz.rcvtimeo.count(s) ? g_fz.rcvtimeo[s] : -1;
   g_fz.timeouts_seen.push_back(timeout);
   FakeReply r = g_fake_sidecar ? g_fake_sidecar(g_fz.pending[s]) : FakeReply();
   g_fz.pending.erase(s);
   if(timeout >= 0 && r.latency_ms > timeout)
   {
      g_fk.tick_count_ms += (ulong)timeout;
      return -1;
   }
   g_fk.tick_count_ms += (ulong)r.latency_ms;
   for(size_t i = 0; i < r.text.size() && i < len; i++)
      buf[(int)i] = (uchar)r.text[i];
   return (int)r.text.size();
}
int zmq_errno() { return 11; }

int WebRequest(const string &, const string &url, const string &, int timeout, const MqlArray<char> &body, MqlArray<char> &result,
               string &)
{
   g_fz.urls.push_back(url);
   g_fz.timeouts_seen.push_back(timeout);
   string text;
   for(int i = 0; i < ArraySize(body); i++)
      text += body[i];
   FakeReply r = g_fake_sidecar ? g_fake_sidecar(text) : FakeReply();
   if(r.latency_ms > timeout)
   {
      g_fk.last_error = 5202;
      return -1;
   }
   ArrayResize(result, (int)r.text.size());
   for(size_t i = 0; i < r.text.size(); i++)
      result[(int)i] = r.text[i];
   return 200;
}

#endif
