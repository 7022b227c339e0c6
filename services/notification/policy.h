/* policy.h - notification's rules without I/O: who hears of an event, which variables
 * an SMS may carry, quiet hours, retry backoff and the digest text. */
#ifndef NOTIFICATION_POLICY_H
#define NOTIFICATION_POLICY_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The variables an SMS template may use: the case number, what is asked, deadlines and
 * the unit. Never the title, the description, names or allegation text. */
extern const char *const notification_sms_vars[];

/* Checks that template 'tpl' uses only {{names}} of notification_sms_vars and that
 * its placeholders are closed. DUB_ERR_CONFIG with a new *why naming the variable. */
enum dub_err notification_sms_template_check(const char *tpl, char **why);

/* Checks every "<type>.sms" template of 'templates' (an object of name -> text).
 * DUB_ERR_CONFIG with a new *why: "templates/<name>.txt: {{title}} is not allowed in
 * an SMS (allowed: ...)". */
enum dub_err notification_templates_check(const json_t *templates, char **why);

/* The default routing table (who hears what), as JSON text; see notify.json in
 * deploy/config and its schema schemas/config/notify.json. */
extern const char notification_default_routes[];

/* Roles a route names in "to". */
#define NOTIFY_ROLE_OFFICER "officer"
#define NOTIFY_ROLE_UNIT_HEAD "unit_head"
#define NOTIFY_ROLE_SUPERVISORS "supervisors"
#define NOTIFY_ROLE_LEADERS "leaders"
#define NOTIFY_ROLE_REPORTER "reporter"

/* The first route of 'routes' (the "routes" array of notify.json) matching event
 * 'type' with 'clock' (NULL when the event has none) and escalation 'level' (0 when
 * none). Borrowed from 'routes'; NULL when nobody hears of such an event. */
const json_t *notification_route_find(const json_t *routes, const char *type,
                                      const char *clock, int level);

/* Officers of 'directory' who hear of a case under 'route': a new JSON array of
 * officer objects (borrowed members copied by reference), without duplicates, without
 * inactive officers and without anyone recused for the case: whose unit is
 * 'subject_unit', who lists it in "conflicts", or whose id is in 'recused' (an array
 * of ids; may be NULL). 'officer_id' and 'unit_id' (may be NULL) are the case's current
 * assignee and unit. */
json_t *notification_recipients(const json_t *route, const json_t *directory,
                                const char *officer_id, const char *unit_id,
                                const char *subject_unit, const json_t *recused);

/* The member of array 'arr' whose "id" is 'id' (borrowed), or NULL. */
const json_t *notification_find_by_id(const json_t *arr, const char *id);

/* True when officer 'officer' (an object of directory.json) must never hear of a case
 * about 'subject_unit' or whose recused list 'recused' names it. */
bool notification_recused(const json_t *officer, const char *subject_unit,
                          const json_t *recused);

/* Quiet hours as seconds of the day in Asia/Shanghai, [start, end), wrapping over
 * midnight when end <= start. start == end means no quiet hours. */
struct notification_quiet {
  int start_s;
  int end_s;
};

/* Parses "HH:MM[:SS]-HH:MM[:SS]" or "off". False when malformed. */
bool notification_quiet_parse(const char *text, struct notification_quiet *out);

/* When quiet hours hold a message created at 'now_ms': the end of the window it falls
 * in (ms since the epoch), or 0 when 'now_ms' is outside quiet hours. */
int64_t notification_quiet_until(const struct notification_quiet *q, int64_t now_ms);

/* Delay before attempt 'attempt' (2 = the first retry): base * 2^(attempt - 2), at most
 * 'max_ms', with "equal jitter": half fixed, half uniformly random from 'random' (a
 * uniform value in [0, 1)). */
int64_t notification_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms,
                                double random);

/* Whether the retries of a message end after a temporary failure: when 'attempts' (made
 * so far) reached 'max_attempts', or when the next attempt, due at 'next_ms', would come
 * later than 'max_age_ms' after the message was created at 'created_ms'. */
bool notification_retries_end(long long attempts, long long max_attempts,
                              int64_t created_ms, int64_t next_ms, int64_t max_age_ms);

/* The digest SMS for 'count' folded notifications about the case numbers in 'case_ids'
 * (an array of strings, the first few are named). Returns a new string. */
char *notification_digest_text(const json_t *case_ids, long long count);

#endif
