/* signals.h - the process's only mutable globals: flags set by SIGTERM/SIGINT/SIGHUP. */
#ifndef DUB_CORE_SIGNALS_H
#define DUB_CORE_SIGNALS_H

#include <stdbool.h>

/* Installs handlers: SIGTERM and SIGINT request a stop, SIGHUP a config reload; SIGPIPE
 * is ignored. Call once from main() before threads start. */
void dub_signals_install(void);
/* True once SIGTERM or SIGINT arrived (or dub_signals_request_stop() was called). */
bool dub_signals_stop_requested(void);
/* Asks the main loop to stop, as SIGTERM would (e.g. after a fatal Kafka error). */
void dub_signals_request_stop(void);
/* True once per SIGHUP received since the last call. */
bool dub_signals_take_reload(void);

#endif
