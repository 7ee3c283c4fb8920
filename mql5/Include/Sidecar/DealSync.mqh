//+------------------------------------------------------------------+
//| DealSync.mqh -- which of the account's history deals the EA still |
//| has to report to the sidecar.                                     |
//| OnTradeTransaction misses deals: the terminal was closed when a   |
//| stop or target filled on the server, or its transaction queue     |
//| (1024 events) overflowed. A missed losing close leaves the        |
//| sidecar's loss streak and Kelly statistics wrong (Kelly sizes up  |
//| on a history without its losses), so the EA re-reads the history |
//| and queues what it has not sent. The sidecar stores deals by      |
//| ticket, so sending one twice is safe; skipping one is not.        |
//| Pure logic in the MQL5/C++ common subset (tested with g++). The   |
//| includer supplies the history rows (the EA: the window its        |
//| HistorySelect loaded; the tests: a table) and persists the        |
//| cursor's text.                                                    |
//+------------------------------------------------------------------+
#ifndef SIDECAR_DEALSYNC_MQH
#define SIDECAR_DEALSYNC_MQH

#include "Strings.mqh"

#define DEAL_SYNC_RECENT     4096    // tickets remembered as sent (in memory only); more than a
                                     // batch plus a margin's worth of deals, so continuing a cut
                                     // batch does not re-send the previous one
#define DEAL_SYNC_MARGIN     86400   // seconds every read goes back behind the watermark: history
                                     // that reached the terminal late, deals in the same second
#define DEAL_SYNC_BATCH      1000    // deals queued by one read at most (the oldest first)
#define DEAL_SYNC_OPENED     4096    // positions opened with the magic, remembered per read
#define DEAL_SYNC_MAX_DAYS   365
#define DEAL_SYNC_MIN_TIME   946684800  // 2000-01-01: an older watermark is a damaged file
#define DEAL_SYNC_SETTLE_SEC 120     // a read counts as complete once the terminal has been
                                     // connected this long (its history downloaded)
#define DEAL_SYNC_ENTRY_FRESH_SEC 5  // an entry reads the history first when the last read is older

struct DealSyncCursor
  {
   long              synced_to;        // server time up to which a complete read queued every deal
                                       // of this EA (0 = never); only reads move it, live deals not
   int               count;            // tickets in the ring
   int               next;             // where the ring writes next
   ulong             recent[DEAL_SYNC_RECENT];
  };

// One deal of the history window.
struct DealSyncRow
  {
   ulong             ticket;
   long              time;             // server time
   bool              buy_or_sell;      // DEAL_TYPE_BUY or DEAL_TYPE_SELL (not balance, credit, ...)
   long              magic;
   bool              opens;            // DEAL_ENTRY_IN, or DEAL_ENTRY_INOUT (a netting reversal)
   ulong             position;         // DEAL_POSITION_ID
  };

// When the EA reads and whether it may enter: the terminal's connection and the reads since.
// Its times are seconds on a clock that never jumps (the EA's NowMono), not server time, whose
// daylight-saving jump back would pause the reads for an hour.
struct DealSyncClock
  {
   bool              connected;        // at the last check
   long              connected_since;  // clock time of the last (re)connect
   long              last_read;        // clock time of the last read (0 = none)
   bool              read_since_connect;
   bool              complete_since_connect;  // a complete read ran since the last (re)connect
   bool              backlog;          // the last read was cut: more deals wait in the history
  };

// The candidates of one read, kept sorted by (time, ticket): the sidecar judges a position's
// result when its closing deal arrives, so deals must reach it in the order they happened.
struct DealSyncBatch
  {
   int               count;
   int               dropped;          // candidates beyond DEAL_SYNC_BATCH (left for the next read)
   ulong             ticket[DEAL_SYNC_BATCH];
   long              time[DEAL_SYNC_BATCH];
   int               opened_count;
   int               opened_dropped;   // positions beyond DEAL_SYNC_OPENED (their foreign-magic
                                       // closes count only while the position is managed)
   ulong             opened[DEAL_SYNC_OPENED];
  };

// Supplied by the includer: the rows of the window read, and whether the EA still manages a
// position (its global variable exists).
int  DealSyncHistoryTotal(void);
bool DealSyncHistoryRow(const int index, DealSyncRow &row);
bool DealSyncPositionManaged(const ulong position);

void DealSyncClockReset(DealSyncClock &k)
  {
   k.connected = false;
   k.connected_since = 0;
   k.last_read = 0;
   k.read_since_connect = false;
   k.complete_since_connect = false;
   k.backlog = false;
  }

// Called once a second: a (re)connect starts the reads over (the history may have missed
// anything while the terminal was away).
void DealSyncClockConnection(DealSyncClock &k, const bool connected, const long now)
  {
   if(connected && !k.connected)
     {
      k.connected_since = now;
      k.read_since_connect = false;
      k.complete_since_connect = false;
     }
   k.connected = connected;
  }

// A read is complete when the terminal has been connected long enough to have its history.
bool DealSyncComplete(const DealSyncClock &k, const long now)
  {
   return k.connected && now - k.connected_since >= DEAL_SYNC_SETTLE_SEC;
  }

// Whether the timer reads now: right after a (re)connect, once more when that connection has
// settled, as soon as the queue drained after a cut read, then every `period_min` minutes.
bool DealSyncReadDue(const DealSyncClock &k, const long now, const int period_min, const int queued)
  {
   if(!k.connected)
      return false;
   if(!k.read_since_connect)
      return true;
   if(!k.complete_since_connect && DealSyncComplete(k, now))
      return true;
   if(k.backlog && queued == 0)
      return true;
   return now - k.last_read >= (long)period_min * 60;
  }

void DealSyncClockRead(DealSyncClock &k, const long now, const bool complete, const bool cut)
  {
   k.last_read = now;
   k.read_since_connect = true;
   if(complete)
      k.complete_since_connect = true;
   k.backlog = cut;
  }

// An entry first reads the history when the last read is this old (a transaction the terminal
// dropped in a live session is found before the next position is sized, not minutes later).
bool DealSyncReadBeforeEntry(const DealSyncClock &k, const long now)
  {
   return k.connected && now - k.last_read >= DEAL_SYNC_ENTRY_FRESH_SEC;
  }

// Why entries wait ("" = they need not): the sidecar must count every deal before it sizes the
// next position.
string DealSyncEntryBlock(const DealSyncClock &k, const int queued)
  {
   if(queued > 0)
      return "DEALS_QUEUED";
   if(!k.complete_since_connect)
      return "HISTORY_NOT_READ";
   if(k.backlog)
      return "HISTORY_BACKLOG";
   return "";
  }

void DealSyncReset(DealSyncCursor &c)
  {
   c.synced_to = 0;
   c.count = 0;
   c.next = 0;
   for(int i = 0; i < DEAL_SYNC_RECENT; i++)
      c.recent[i] = 0;
  }

int DealSyncClampDays(const int days)
  {
   return days < 1 ? 1 : (days > DEAL_SYNC_MAX_DAYS ? DEAL_SYNC_MAX_DAYS : days);
  }

// Server time the next read starts at: the margin behind the watermark, or `first_days` back
// when there is none. A watermark in the future (a clock that jumped) counts as now.
long DealSyncFrom(const DealSyncCursor &c, const long now, const int first_days)
  {
   if(c.synced_to > 0)
      return (c.synced_to > now ? now : c.synced_to) - DEAL_SYNC_MARGIN;
   return now - (long)DealSyncClampDays(first_days) * 86400;
  }

bool DealSyncKnown(const DealSyncCursor &c, const ulong ticket)
  {
   for(int i = 0; i < c.count; i++)
      if(c.recent[i] == ticket)
         return true;
   return false;
  }

// Forgets a ticket (its stored message was unreadable and dropped): a read finds it again.
void DealSyncForget(DealSyncCursor &c, const ulong ticket)
  {
   for(int i = 0; i < c.count; i++)
      if(c.recent[i] == ticket)
         c.recent[i] = 0;
  }

// Records a deal as queued: the ring forgets the oldest tickets first.
void DealSyncNote(DealSyncCursor &c, const ulong ticket)
  {
   if(ticket == 0 || DealSyncKnown(c, ticket))
      return;
   c.recent[c.next] = ticket;
   c.next = (c.next + 1) % DEAL_SYNC_RECENT;
   if(c.count < DEAL_SYNC_RECENT)
      c.count++;
  }

// A deal is this EA's when it carries the EA's magic, or belongs to a position the EA opened:
// one whose opening deal, with the magic, is inside the window, or one it still manages (a
// stop-out or a manual close may carry another magic).
bool DealSyncIsOurs(const long magic, const long our_magic, const bool opened_by_us,
                    const bool position_managed)
  {
   return magic == our_magic || opened_by_us || position_managed;
  }

void DealSyncBatchReset(DealSyncBatch &b)
  {
   b.count = 0;
   b.dropped = 0;
   b.opened_count = 0;
   b.opened_dropped = 0;
  }

void DealSyncMarkOpened(DealSyncBatch &b, const ulong position)
  {
   if(position == 0)
      return;
   for(int i = 0; i < b.opened_count; i++)
      if(b.opened[i] == position)
         return;
   if(b.opened_count < DEAL_SYNC_OPENED)
      b.opened[b.opened_count++] = position;
   else
      b.opened_dropped++;
  }

bool DealSyncOpened(const DealSyncBatch &b, const ulong position)
  {
   if(position == 0)
      return false;
   for(int i = 0; i < b.opened_count; i++)
      if(b.opened[i] == position)
         return true;
   return false;
  }

bool DealSyncBefore(const long time_a, const ulong ticket_a, const long time_b, const ulong ticket_b)
  {
   return time_a < time_b || (time_a == time_b && ticket_a < ticket_b);
  }

// Inserts a candidate in (time, ticket) order; when full, the newest one is dropped (and
// counted) so the next read, starting behind the newest deal queued, picks it up. Returns true
// when the candidate is in the batch now.
bool DealSyncBatchAdd(DealSyncBatch &b, const ulong ticket, const long time)
  {
   for(int i = 0; i < b.count; i++)
      if(b.ticket[i] == ticket)
         return false;
   if(b.count == DEAL_SYNC_BATCH)
     {
      int last = b.count - 1;
      b.dropped++;
      if(!DealSyncBefore(time, ticket, b.time[last], b.ticket[last]))
         return false;
      b.count--;   // the newest makes room
     }
   int k = b.count;
   while(k > 0 && DealSyncBefore(time, ticket, b.time[k - 1], b.ticket[k - 1]))
     {
      b.ticket[k] = b.ticket[k - 1];
      b.time[k] = b.time[k - 1];
      k--;
     }
   b.ticket[k] = ticket;
   b.time[k] = time;
   b.count++;
   return true;
  }

// One row of the window (after every opening deal was marked): a buy or sell deal of this EA
// not queued yet becomes a candidate. Returns true when added.
bool DealSyncConsider(DealSyncBatch &b, const DealSyncCursor &c, const DealSyncRow &row,
                      const long our_magic)
  {
   if(row.ticket == 0 || !row.buy_or_sell)
      return false;
   if(!DealSyncIsOurs(row.magic, our_magic, DealSyncOpened(b, row.position),
                      row.magic != our_magic && DealSyncPositionManaged(row.position)))
      return false;
   if(DealSyncKnown(c, row.ticket))
      return false;
   return DealSyncBatchAdd(b, row.ticket, row.time);
  }

// The candidates of the window the includer loaded: two passes over its rows (positions opened
// with the magic first, since a close's row may come before its opening deal's).
void DealSyncCollect(DealSyncBatch &b, const DealSyncCursor &c, const long our_magic)
  {
   DealSyncBatchReset(b);
   int total = DealSyncHistoryTotal();
   DealSyncRow row;
   for(int i = 0; i < total; i++)
      if(DealSyncHistoryRow(i, row) && row.opens && row.buy_or_sell && row.magic == our_magic)
         DealSyncMarkOpened(b, row.position);
   for(int i = 0; i < total; i++)
      if(DealSyncHistoryRow(i, row))
         DealSyncConsider(b, c, row, our_magic);
  }

// After the batch was queued: its tickets are remembered, and when the read was complete (the
// terminal connected long enough) and the queue holding the batch was saved, the watermark
// moves to the read's end, or only to the newest deal queued when the batch was cut.
void DealSyncFinish(DealSyncCursor &c, const DealSyncBatch &b, const long read_end, const bool complete)
  {
   for(int i = 0; i < b.count; i++)
      DealSyncNote(c, b.ticket[i]);
   if(!complete)
      return;
   if(c.synced_to > read_end)
      c.synced_to = read_end;   // a watermark from a clock that ran ahead comes back
   long to = read_end;
   if(b.dropped > 0)
      to = b.count > 0 ? b.time[b.count - 1] : c.synced_to;
   if(to > c.synced_to)
      c.synced_to = to;
  }

string DealSyncSerialize(const DealSyncCursor &c)
  {
   return "v=1\nsynced_to=" + IntegerToString(c.synced_to) + "\n";
  }

// Reads DealSyncSerialize output. Returns false (cursor reset: the next read goes the first
// run's days back, and the sidecar drops what it already has) when the text is not valid.
bool DealSyncParse(const string text, DealSyncCursor &c)
  {
   DealSyncReset(c);
   bool version_ok = false;
   bool time_ok = false;
   bool bad = false;
   int n = StringLen(text);
   int pos = 0;
   while(pos < n && !bad)
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
      if(line == "v=1")
         version_ok = true;
      else
         if(StringFind(line, "synced_to=") == 0)
           {
            string val = StringSubstr(line, 10);
            bool digits = StringLen(val) > 0 && StringLen(val) <= 18;
            for(int i = 0; i < StringLen(val) && digits; i++)
              {
               ushort ch = StringGetCharacter(val, i);
               digits = ch >= '0' && ch <= '9';
              }
            if(digits && StringToInteger(val) < DEAL_SYNC_MIN_TIME)
               digits = false;   // a truncated file: "synced_to=17"
            if(digits)
              {
               c.synced_to = StringToInteger(val);
               time_ok = true;
              }
            else
               bad = true;
           }
         else
            bad = true;
     }
   if(bad || !version_ok || !time_ok)
     {
      DealSyncReset(c);
      return false;
     }
   return true;
  }

#endif
