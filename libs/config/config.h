/* config.h - the files of DUBAN_CONFIG_DIR, validated against schemas/, reloadable. */
#ifndef DUB_CONFIG_CONFIG_H
#define DUB_CONFIG_CONFIG_H

#include "core/err.h"

#include <jansson.h>

struct dub_calendar;

/* Which files a service needs; clients.json is always loaded (every service
 * authenticates its /v1 endpoints). */
enum dub_config_part {
  DUB_CONFIG_DIRECTORY = 1 << 0, /* directory.json */
  DUB_CONFIG_RULES = 1 << 1,     /* rules.json */
  DUB_CONFIG_SLA = 1 << 2,       /* sla.json */
  DUB_CONFIG_CALENDAR = 1 << 3,  /* calendar/<year>.json */
  DUB_CONFIG_TEMPLATES = 1 << 4, /* templates/<event type>.<channel>.txt */
};

/* One consistent snapshot of the configuration. Immutable and reference-counted: a
 * reader takes a reference for as long as it uses the snapshot, so a reload never
 * changes what a running request sees. Members not asked for are NULL. */
struct dub_config {
  json_t *directory;
  json_t *rules;
  json_t *sla;
  json_t *clients;
  json_t *templates; /* object: "duban.case.assigned.sms" -> template text */
  struct dub_calendar *calendar;
  int calendar_years; /* number of calendar files loaded */
};

/* Loads the files of 'dir' named by 'parts' and validates each against its schema in
 * 'schema_dir'/config/. Returns a new snapshot with one reference (release with
 * dub_config_unref), or DUB_ERR_CONFIG / DUB_ERR_IO with *why naming the file, the JSON
 * pointer and the problem ("rules.json: /rules/0/strategy: must be one of ..."). */
enum dub_err dub_config_load(const char *dir, const char *schema_dir, unsigned parts,
                             struct dub_config **out, char **why);
/* Adds a reference; returns 'config'. */
struct dub_config *dub_config_ref(struct dub_config *config);
/* Drops a reference; frees the snapshot with the last one. NULL is a no-op. */
void dub_config_unref(struct dub_config *config);

/* A check of a loaded snapshot beyond what the schemas can say, e.g. that the units a
 * service's rules name exist in directory.json. Returns DUB_OK, or DUB_ERR_CONFIG with
 * *why a new message in the form of the schema errors ("rules.json: /rules/2/unit: ...").
 * Runs on the thread that loads or reloads; must not keep 'config'. */
typedef enum dub_err (*dub_config_check_fn)(void *ctx, const struct dub_config *config,
                                            char **why);

/* Holds the current snapshot of a running service, swapped on reload. Thread-safe. */
struct dub_config_holder;

/* Loads the first snapshot; fails as dub_config_load does. Strings are copied. */
enum dub_err dub_config_holder_new(const char *dir, const char *schema_dir,
                                   unsigned parts, struct dub_config_holder **out,
                                   char **why);
/* The current snapshot with a new reference: release with dub_config_unref. */
struct dub_config *dub_config_holder_get(struct dub_config_holder *holder);
/* Loads the files again. When they are valid the new snapshot replaces the old one;
 * otherwise the running snapshot stays and *why says what was wrong. */
enum dub_err dub_config_holder_reload(struct dub_config_holder *holder, char **why);
/* From now on a reloaded snapshot must also pass 'check' (called with 'ctx', borrowed
 * for the holder's life) before it replaces the running one; NULL removes the check.
 * Checks the current snapshot at once and returns that result, so a service can refuse
 * to start on a configuration its check rejects. */
enum dub_err dub_config_holder_set_check(struct dub_config_holder *holder,
                                         dub_config_check_fn check, void *ctx,
                                         char **why);
void dub_config_holder_free(struct dub_config_holder *holder);

#endif
