// The history DealSync.mqh reads, for the C++ drivers: a table standing in for the window the
// EA's HistorySelect loads (g_history_rows), and the positions whose global variable exists
// (g_managed_positions: still managed by the EA).
#ifndef SIDECAR_DEAL_HISTORY_TABLE_H
#define SIDECAR_DEAL_HISTORY_TABLE_H

#include <vector>

#include "mql5_shim.h"

#include "Sidecar/DealSync.mqh"

static std::vector<DealSyncRow> g_history_rows;
static std::vector<ulong> g_managed_positions;

int DealSyncHistoryTotal(void) { return (int)g_history_rows.size(); }

bool DealSyncHistoryRow(const int index, DealSyncRow &row)
{
   if(index < 0 || index >= (int)g_history_rows.size())
      return false;
   row = g_history_rows[(size_t)index];
   return true;
}

bool DealSyncPositionManaged(const ulong position)
{
   for(ulong m : g_managed_positions)
      if(m == position)
         return true;
   return false;
}

#endif
