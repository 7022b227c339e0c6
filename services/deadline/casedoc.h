/* casedoc.h - a case's document built from its events (no I/O). */
#ifndef DEADLINE_CASEDOC_H
#define DEADLINE_CASEDOC_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>

struct dub_sla_moments;

/* Starts the document of a case from the data of its duban.case.received event and its
 * SLA moments. Copies what queries need; never the reporter (not even sealed). Returns
 * a new object. */
json_t *deadline_casedoc_new(const json_t *received, const struct dub_sla_moments *m);

/* Whether the event with this id is already in the document's history (a redelivery). */
bool deadline_casedoc_has_event(const json_t *doc, const char *event_id);

/* Applies one event (type, id, time, data) to 'doc' and records it in the history.
 * duban.case.assigned sets unit, assignee and needs_manual; the full lifecycle comes
 * with the deadline issue. */
void deadline_casedoc_apply(json_t *doc, const json_t *event);

#endif
