/* signals.c - async-signal-safe flags; the handlers only store to sig_atomic_t. */
#include "core/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_signal(int sig)
{
  if(sig == SIGHUP)
    reload_flag = 1;
  else
    stop_flag = 1;
}

void dub_signals_install(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
}

bool dub_signals_stop_requested(void)
{
  return stop_flag != 0;
}

void dub_signals_request_stop(void)
{
  stop_flag = 1;
}

bool dub_signals_take_reload(void)
{
  if(!reload_flag)
    return false;
  reload_flag = 0;
  return true;
}
