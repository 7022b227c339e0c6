/* signals.c - async-signal-safe flags; the handlers only store to lock-free atomics,
 * which any thread may then read (a volatile sig_atomic_t is safe against the handler
 * but not across threads). */
#include "core/signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal flags need lock-free atomic int");

static atomic_int stop_flag;
static atomic_int reload_flag;

static void on_signal(int sig)
{
  if(sig == SIGHUP)
    atomic_store(&reload_flag, 1);
  else
    atomic_store(&stop_flag, 1);
}

void dub_signals_install(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sa.sa_flags = 0;
  sigaction(SIGPIPE, &sa, NULL);
}

bool dub_signals_stop_requested(void)
{
  return atomic_load(&stop_flag) != 0;
}

void dub_signals_request_stop(void)
{
  atomic_store(&stop_flag, 1);
}

bool dub_signals_take_reload(void)
{
  return atomic_exchange(&reload_flag, 0) != 0;
}
