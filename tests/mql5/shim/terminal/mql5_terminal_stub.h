// mql5_terminal_stub.h -- declarations of the MetaTrader 5 terminal API used by the MQL5-only
// files (SidecarEA.mq5, Transport.mqh, Executor.mqh), written from the MQL5 reference, so that g++
// can check those files for syntax, names, arity and types (-fsyntax-only), and so that the
// behavioural fake of the terminal (../fake/terminal_fake.h) can define them and run those files.
// It cannot prove the terminal's own signatures: only MetaEditor can. Dynamic arrays become
// MqlArray<T> and pointer member access "p." becomes "p->" in the test's source transform.
#ifndef SIDECAR_MQL5_TERMINAL_STUB_H
#define SIDECAR_MQL5_TERMINAL_STUB_H

#include <vector>

#include "mql5_shim.h"

template <class T>
struct MqlArray
{
   std::vector<T> v;
   T &operator[](int i) { return v[(size_t)i]; }
   const T &operator[](int i) const { return v[(size_t)i]; }
};
template <class T>
int ArraySize(const MqlArray<T> &a) { return (int)a.v.size(); }
template <class T>
int ArrayResize(MqlArray<T> &a, int n) { a.v.resize((size_t)n); return n; }
template <class T>
bool ArrayRemove(MqlArray<T> &a, int start, int count) { a.v.erase(a.v.begin() + start, a.v.begin() + start + count); return true; }

#define NULL_HANDLE 0
#define INVALID_HANDLE (-1)
#define WHOLE_ARRAY (-1)
#define CP_ACP 0
#define CP_UTF8 65001
#define INIT_SUCCEEDED 0
#define INIT_FAILED 1
#define INIT_PARAMETERS_INCORRECT 2
#define FILE_READ 1
#define FILE_WRITE 2
#define FILE_BIN 4
#define FILE_CSV 8
#define FILE_TXT 16
#define FILE_ANSI 32
#define FILE_UNICODE 64
#define FILE_REWRITE 512
#define FILE_COMMON 4096
#define SYMBOL_FILLING_FOK 1
#define SYMBOL_FILLING_IOC 2
#define SYMBOL_ORDER_MARKET 1
#define SYMBOL_ORDER_SL 16
#define SYMBOL_ORDER_TP 32
#define _Symbol (string("EURUSD"))

enum ENUM_TIMEFRAMES { PERIOD_CURRENT = 0, PERIOD_M1 = 1, PERIOD_M15 = 15, PERIOD_H1 = 16385, PERIOD_D1 = 16408 };
enum ENUM_TERMINAL_INFO_INTEGER { TERMINAL_CONNECTED, TERMINAL_DLLS_ALLOWED, TERMINAL_TRADE_ALLOWED };
enum ENUM_MQL_INFO_INTEGER { MQL_TESTER, MQL_DLLS_ALLOWED, MQL_OPTIMIZATION, MQL_VISUAL_MODE, MQL_TRADE_ALLOWED };
enum ENUM_ACCOUNT_INFO_INTEGER { ACCOUNT_LOGIN, ACCOUNT_LEVERAGE, ACCOUNT_MARGIN_MODE, ACCOUNT_TRADE_ALLOWED, ACCOUNT_TRADE_EXPERT };
enum ENUM_ACCOUNT_INFO_DOUBLE { ACCOUNT_BALANCE, ACCOUNT_EQUITY, ACCOUNT_MARGIN, ACCOUNT_MARGIN_FREE, ACCOUNT_PROFIT };
enum ENUM_ACCOUNT_INFO_STRING { ACCOUNT_SERVER, ACCOUNT_CURRENCY, ACCOUNT_NAME, ACCOUNT_COMPANY };
enum ENUM_ACCOUNT_MARGIN_MODE { ACCOUNT_MARGIN_MODE_RETAIL_NETTING, ACCOUNT_MARGIN_MODE_EXCHANGE, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING };
enum ENUM_SYMBOL_INFO_INTEGER { SYMBOL_DIGITS, SYMBOL_TRADE_STOPS_LEVEL, SYMBOL_TRADE_FREEZE_LEVEL, SYMBOL_FILLING_MODE, SYMBOL_TRADE_EXEMODE, SYMBOL_ORDER_MODE, SYMBOL_TRADE_MODE };
enum ENUM_SYMBOL_INFO_DOUBLE { SYMBOL_POINT, SYMBOL_TRADE_TICK_SIZE, SYMBOL_TRADE_TICK_VALUE, SYMBOL_TRADE_TICK_VALUE_LOSS, SYMBOL_TRADE_TICK_VALUE_PROFIT, SYMBOL_TRADE_CONTRACT_SIZE, SYMBOL_VOLUME_MIN, SYMBOL_VOLUME_STEP, SYMBOL_VOLUME_MAX, SYMBOL_BID, SYMBOL_ASK };
enum ENUM_SYMBOL_INFO_STRING { SYMBOL_CURRENCY_BASE, SYMBOL_CURRENCY_PROFIT, SYMBOL_CURRENCY_MARGIN, SYMBOL_DESCRIPTION };
enum ENUM_SYMBOL_TRADE_MODE { SYMBOL_TRADE_MODE_DISABLED, SYMBOL_TRADE_MODE_LONGONLY, SYMBOL_TRADE_MODE_SHORTONLY, SYMBOL_TRADE_MODE_CLOSEONLY, SYMBOL_TRADE_MODE_FULL };
enum ENUM_SYMBOL_TRADE_EXECUTION { SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT, SYMBOL_TRADE_EXECUTION_MARKET, SYMBOL_TRADE_EXECUTION_EXCHANGE };
enum ENUM_ORDER_TYPE_FILLING { ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN, ORDER_FILLING_BOC };
enum ENUM_ORDER_TYPE { ORDER_TYPE_BUY, ORDER_TYPE_SELL };
enum ENUM_ORDER_TYPE_TIME { ORDER_TIME_GTC, ORDER_TIME_DAY, ORDER_TIME_SPECIFIED, ORDER_TIME_SPECIFIED_DAY };
enum ENUM_TRADE_REQUEST_ACTIONS { TRADE_ACTION_DEAL = 1, TRADE_ACTION_PENDING = 5, TRADE_ACTION_SLTP = 6, TRADE_ACTION_MODIFY = 7, TRADE_ACTION_REMOVE = 8, TRADE_ACTION_CLOSE_BY = 10 };
enum ENUM_POSITION_TYPE { POSITION_TYPE_BUY, POSITION_TYPE_SELL };
enum ENUM_POSITION_PROPERTY_INTEGER { POSITION_TICKET, POSITION_TIME, POSITION_TYPE, POSITION_MAGIC, POSITION_IDENTIFIER };
enum ENUM_POSITION_PROPERTY_DOUBLE { POSITION_VOLUME, POSITION_PRICE_OPEN, POSITION_SL, POSITION_TP, POSITION_PRICE_CURRENT, POSITION_SWAP, POSITION_PROFIT };
enum ENUM_POSITION_PROPERTY_STRING { POSITION_SYMBOL, POSITION_COMMENT };
enum ENUM_ORDER_PROPERTY_INTEGER { ORDER_MAGIC, ORDER_TYPE, ORDER_TIME_SETUP };
enum ENUM_ORDER_PROPERTY_STRING { ORDER_SYMBOL, ORDER_COMMENT };
enum ENUM_DEAL_PROPERTY_INTEGER { DEAL_TICKET, DEAL_ORDER, DEAL_TIME, DEAL_TYPE, DEAL_ENTRY, DEAL_MAGIC, DEAL_POSITION_ID, DEAL_REASON };
enum ENUM_DEAL_REASON { DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB, DEAL_REASON_EXPERT, DEAL_REASON_SL, DEAL_REASON_TP, DEAL_REASON_SO };
enum ENUM_DEAL_PROPERTY_DOUBLE { DEAL_VOLUME, DEAL_PRICE, DEAL_COMMISSION, DEAL_SWAP, DEAL_PROFIT };
enum ENUM_DEAL_PROPERTY_STRING { DEAL_SYMBOL, DEAL_COMMENT };
enum ENUM_DEAL_TYPE { DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE };
enum ENUM_DEAL_ENTRY { DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY };
enum ENUM_TRADE_TRANSACTION_TYPE { TRADE_TRANSACTION_ORDER_ADD, TRADE_TRANSACTION_DEAL_ADD, TRADE_TRANSACTION_HISTORY_ADD };
enum ENUM_CALENDAR_EVENT_IMPORTANCE { CALENDAR_IMPORTANCE_NONE, CALENDAR_IMPORTANCE_LOW, CALENDAR_IMPORTANCE_MODERATE, CALENDAR_IMPORTANCE_HIGH };
enum ENUM_LOG_LEVELS { LOG_LEVEL_NO, LOG_LEVEL_ERRORS, LOG_LEVEL_ALL };

#define TRADE_RETCODE_REQUOTE 10004
#define TRADE_RETCODE_REJECT 10006
#define TRADE_RETCODE_CANCEL 10007
#define TRADE_RETCODE_PLACED 10008
#define TRADE_RETCODE_DONE 10009
#define TRADE_RETCODE_DONE_PARTIAL 10010
#define TRADE_RETCODE_ERROR 10011
#define TRADE_RETCODE_TIMEOUT 10012
#define TRADE_RETCODE_INVALID 10013
#define TRADE_RETCODE_INVALID_VOLUME 10014
#define TRADE_RETCODE_INVALID_PRICE 10015
#define TRADE_RETCODE_INVALID_STOPS 10016
#define TRADE_RETCODE_TRADE_DISABLED 10017
#define TRADE_RETCODE_MARKET_CLOSED 10018
#define TRADE_RETCODE_NO_MONEY 10019
#define TRADE_RETCODE_PRICE_CHANGED 10020
#define TRADE_RETCODE_PRICE_OFF 10021
#define TRADE_RETCODE_TOO_MANY_REQUESTS 10024
#define TRADE_RETCODE_NO_CHANGES 10025
#define TRADE_RETCODE_SERVER_DISABLES_AT 10026
#define TRADE_RETCODE_CLIENT_DISABLES_AT 10027
#define TRADE_RETCODE_FROZEN 10029
#define TRADE_RETCODE_INVALID_FILL 10030
#define TRADE_RETCODE_CONNECTION 10031
#define TRADE_RETCODE_POSITION_CLOSED 10036
#define TRADE_RETCODE_INVALID_CLOSE_VOLUME 10038
#define TRADE_RETCODE_LIMIT_POSITIONS 10040
#define TRADE_RETCODE_HEDGE_PROHIBITED 10046

struct MqlTick
{
   datetime time;
   double bid;
   double ask;
   double last;
   ulong volume;
   long time_msc;
   uint flags;
   double volume_real;
};

struct MqlRates
{
   datetime time;
   double open;
   double high;
   double low;
   double close;
   long tick_volume;
   int spread;
   long real_volume;
};

struct MqlTradeTransaction
{
   ulong deal;
   ulong order;
   string symbol;
   ENUM_TRADE_TRANSACTION_TYPE type;
   ulong position;
};
struct MqlTradeRequest
{
   ENUM_TRADE_REQUEST_ACTIONS action;
   ulong magic;
   ulong order;
   string symbol;
   double volume;
   double price;
   double stoplimit;
   double sl;
   double tp;
   ulong deviation;
   ENUM_ORDER_TYPE type;
   ENUM_ORDER_TYPE_FILLING type_filling;
   ENUM_ORDER_TYPE_TIME type_time;
   datetime expiration;
   string comment;
   ulong position;
   ulong position_by;
};
struct MqlTradeResult
{
   uint retcode;
   ulong deal;
   ulong order;
   double volume;
   double price;
   double bid;
   double ask;
   string comment;
   uint request_id;
   int retcode_external;
};
// MQL5 ZeroMemory: every field to 0 / "" (here: value-initialisation).
template <class T>
void ZeroMemory(T &v) { v = T(); }

struct MqlCalendarValue
{
   ulong id;
   ulong event_id;
   datetime time;
   datetime period;
   int revision;
   long actual_value;
   long prev_value;
   long revised_prev_value;
   long forecast_value;
};
struct MqlCalendarEvent
{
   ulong id;
   ENUM_CALENDAR_EVENT_IMPORTANCE importance;
   string name;
   string event_code;
};

long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER);
double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE);
string AccountInfoString(ENUM_ACCOUNT_INFO_STRING);
long SymbolInfoInteger(const string &, ENUM_SYMBOL_INFO_INTEGER);
double SymbolInfoDouble(const string &, ENUM_SYMBOL_INFO_DOUBLE);
string SymbolInfoString(const string &, ENUM_SYMBOL_INFO_STRING);
bool SymbolInfoTick(const string &, MqlTick &);
bool SymbolSelect(const string &, bool);
long MQLInfoInteger(ENUM_MQL_INFO_INTEGER);
int TerminalInfoInteger(ENUM_TERMINAL_INFO_INTEGER);
int PositionsTotal();
ulong PositionGetTicket(int);
bool PositionSelectByTicket(ulong);
bool PositionSelect(const string &);
long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER);
double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE);
string PositionGetString(ENUM_POSITION_PROPERTY_STRING);
int OrdersTotal();
ulong OrderGetTicket(int);
long OrderGetInteger(ENUM_ORDER_PROPERTY_INTEGER);
string OrderGetString(ENUM_ORDER_PROPERTY_STRING);
bool HistoryDealSelect(ulong);
bool OrderSend(const MqlTradeRequest &, MqlTradeResult &);
bool IsStopped();
bool HistorySelect(datetime, datetime);
int HistoryDealsTotal();
ulong HistoryDealGetTicket(int);
long HistoryDealGetInteger(ulong, ENUM_DEAL_PROPERTY_INTEGER);
double HistoryDealGetDouble(ulong, ENUM_DEAL_PROPERTY_DOUBLE);
string HistoryDealGetString(ulong, ENUM_DEAL_PROPERTY_STRING);
bool OrderCalcProfit(ENUM_ORDER_TYPE, const string &, double, double, double, double &);
datetime TimeCurrent();
datetime TimeTradeServer();
datetime TimeGMT();
ENUM_TIMEFRAMES Period();
string EnumToString(ENUM_TIMEFRAMES);
int CopyRates(const string &, ENUM_TIMEFRAMES, int, int, MqlArray<MqlRates> &);
int CopyRates(const string &, ENUM_TIMEFRAMES, datetime, datetime, MqlArray<MqlRates> &);
datetime iTime(const string &, ENUM_TIMEFRAMES, int);
int iATR(const string &, ENUM_TIMEFRAMES, int);
int CopyBuffer(int, int, int, int, MqlArray<double> &);
bool IndicatorRelease(int);
bool EventSetTimer(int);
void EventKillTimer();
void Comment(const string &);
int GetLastError();
ulong GetTickCount64();
void ResetLastError();
datetime GlobalVariableSet(const string &, double);
double GlobalVariableGet(const string &);
bool GlobalVariableCheck(const string &);
bool GlobalVariableDel(const string &);
void GlobalVariablesFlush();
int FileOpen(const string &, int, ushort, uint);
void FileClose(int);
bool FileIsExist(const string &);
bool FileIsEnding(int);
string FileReadString(int);
uint FileWriteString(int, const string &);
bool FolderCreate(const string &);
bool FileMove(const string &, int, const string &, int);
int StringSplit(const string &, ushort, MqlArray<string> &);
int CalendarValueHistory(MqlArray<MqlCalendarValue> &, datetime, datetime, const char *, const string &);
bool CalendarEventById(ulong, MqlCalendarEvent &);
template <class C>
int StringToCharArray(const string &, MqlArray<C> &, int, int, uint);
template <class C>
string CharArrayToString(const MqlArray<C> &, int, int, uint);
int WebRequest(const string &, const string &, const string &, int, const MqlArray<char> &, MqlArray<char> &, string &);

// libzmq (declared by the #import block in Transport.mqh)
long zmq_ctx_new();
int zmq_ctx_term(long);
long zmq_socket(long, int);
int zmq_close(long);
int zmq_connect(long, const MqlArray<uchar> &);
int zmq_setsockopt(long, int, const int &, ulong);
int zmq_send(long, const MqlArray<uchar> &, ulong, int);
int zmq_recv(long, MqlArray<uchar> &, ulong, int);
int zmq_errno();

#endif
