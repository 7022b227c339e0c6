/* config.c - load, validate and swap the configuration snapshot. */
#include "config/config.h"

#include "calendar/calendar.h"
#include "core/alloc.h"
#include "json/json.h"
#include "schema/schema.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct snapshot {
  struct dub_config pub; /* first, so a struct dub_config * is a struct snapshot * */
  atomic_int refs;
};

struct dub_config_holder {
  pthread_mutex_t lock;
  struct dub_config *current;
  char *dir;
  char *schema_dir;
  unsigned parts;
  dub_config_check_fn check; /* set before the service runs; NULL = none */
  void *check_ctx;
};

/* Reads 'dir'/'name' and validates it against 'schema_dir'/config/'schema_name'. */
static enum dub_err load_valid(const char *dir, const char *name, const char *schema_dir,
                               const char *schema_name, json_t **out, char **why)
{
  enum dub_err rc;
  struct dub_schema *schema = NULL;
  json_t *errors = NULL;
  char *path = dub_xasprintf("%s/%s", dir, name);
  char *schema_path = dub_xasprintf("%s/config/%s", schema_dir, schema_name);
  *out = NULL;
  rc = dub_schema_load_file(schema_path, &schema, why);
  if(rc)
    goto out;
  rc = dub_json_load_file(path, out, why);
  if(rc)
    goto out;
  rc = dub_schema_validate(schema, *out, &errors);
  if(rc) {
    *why = dub_schema_describe(name, errors);
    rc = DUB_ERR_CONFIG;
    json_decref(*out);
    *out = NULL;
  }
out:
  json_decref(errors);
  dub_schema_free(schema);
  free(schema_path);
  free(path);
  return rc;
}

static bool has_suffix(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Every calendar/<YYYY>.json is validated against calendar.json before the calendar
 * library reads the directory. */
static enum dub_err load_calendar(const char *dir, const char *schema_dir,
                                  struct dub_config *c, char **why)
{
  enum dub_err rc = DUB_OK;
  char *cal_dir = dub_xasprintf("%s/calendar", dir);
  DIR *d = opendir(cal_dir);
  if(d) {
    struct dirent *ent;
    while(!rc && (ent = readdir(d)) != NULL) {
      const char *n = ent->d_name;
      if(strlen(n) != 9 || !has_suffix(n, ".json") || strspn(n, "0123456789") != 4)
        continue;
      char *rel = dub_xasprintf("calendar/%s", n);
      json_t *doc = NULL;
      rc = load_valid(dir, rel, schema_dir, "calendar.json", &doc, why);
      json_decref(doc);
      free(rel);
      c->calendar_years++;
    }
    closedir(d);
  }
  if(!rc)
    rc = dub_calendar_load_dir(cal_dir, &c->calendar, why);
  free(cal_dir);
  return rc;
}

/* Reads templates/<event type>.<channel>.txt into an object keyed without ".txt". */
static enum dub_err load_templates(const char *dir, struct dub_config *c, char **why)
{
  enum dub_err rc = DUB_OK;
  char *tpl_dir = dub_xasprintf("%s/templates", dir);
  c->templates = json_object();
  DIR *d = opendir(tpl_dir);
  if(!d)
    goto out; /* no templates is a valid, if quiet, configuration */
  struct dirent *ent;
  while(!rc && (ent = readdir(d)) != NULL) {
    if(ent->d_name[0] == '.' || !has_suffix(ent->d_name, ".txt"))
      continue;
    char *path = dub_xasprintf("%s/%s", tpl_dir, ent->d_name);
    FILE *fp = fopen(path, "rb");
    struct dub_buf buf = DUB_BUF_INIT;
    char chunk[4096];
    size_t n;
    if(!fp) {
      *why = dub_xasprintf("templates/%s: cannot open", ent->d_name);
      rc = DUB_ERR_IO;
    } else {
      while((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        dub_buf_append(&buf, chunk, n);
      fclose(fp);
      json_t *text = json_stringn(buf.data ? buf.data : "", buf.len);
      if(!text) {
        *why = dub_xasprintf("templates/%s: not valid UTF-8 text", ent->d_name);
        rc = DUB_ERR_CONFIG;
      } else {
        char *key = dub_xstrndup(ent->d_name, strlen(ent->d_name) - 4);
        json_object_set_new(c->templates, key, text);
        free(key);
      }
    }
    dub_buf_release(&buf);
    free(path);
  }
  closedir(d);
out:
  free(tpl_dir);
  return rc;
}

enum dub_err dub_config_load(const char *dir, const char *schema_dir, unsigned parts,
                             struct dub_config **out, char **why)
{
  enum dub_err rc;
  struct snapshot *s = dub_xcalloc(1, sizeof *s);
  struct dub_config *c = &s->pub;
  atomic_init(&s->refs, 1);
  *out = NULL;
  *why = NULL;
  rc = load_valid(dir, "clients.json", schema_dir, "clients.json", &c->clients, why);
  if(!rc && (parts & DUB_CONFIG_DIRECTORY))
    rc = load_valid(dir, "directory.json", schema_dir, "directory.json", &c->directory,
                    why);
  if(!rc && (parts & DUB_CONFIG_RULES))
    rc = load_valid(dir, "rules.json", schema_dir, "rules.json", &c->rules, why);
  if(!rc && (parts & DUB_CONFIG_SLA))
    rc = load_valid(dir, "sla.json", schema_dir, "sla.json", &c->sla, why);
  if(!rc && (parts & DUB_CONFIG_CALENDAR))
    rc = load_calendar(dir, schema_dir, c, why);
  if(!rc && (parts & DUB_CONFIG_TEMPLATES))
    rc = load_templates(dir, c, why);
  if(rc) {
    dub_config_unref(c);
    return rc;
  }
  *out = c;
  return DUB_OK;
}

struct dub_config *dub_config_ref(struct dub_config *config)
{
  atomic_fetch_add(&((struct snapshot *)config)->refs, 1);
  return config;
}

void dub_config_unref(struct dub_config *config)
{
  if(!config)
    return;
  struct snapshot *s = (struct snapshot *)config;
  if(atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  json_decref(config->directory);
  json_decref(config->rules);
  json_decref(config->sla);
  json_decref(config->clients);
  json_decref(config->templates);
  dub_calendar_free(config->calendar);
  free(s);
}

enum dub_err dub_config_holder_new(const char *dir, const char *schema_dir,
                                   unsigned parts, struct dub_config_holder **out,
                                   char **why)
{
  struct dub_config *first = NULL;
  enum dub_err rc = dub_config_load(dir, schema_dir, parts, &first, why);
  *out = NULL;
  if(rc)
    return rc;
  struct dub_config_holder *h = dub_xcalloc(1, sizeof *h);
  pthread_mutex_init(&h->lock, NULL);
  h->current = first;
  h->dir = dub_xstrdup(dir);
  h->schema_dir = dub_xstrdup(schema_dir);
  h->parts = parts;
  *out = h;
  return DUB_OK;
}

struct dub_config *dub_config_holder_get(struct dub_config_holder *holder)
{
  pthread_mutex_lock(&holder->lock);
  struct dub_config *c = dub_config_ref(holder->current);
  pthread_mutex_unlock(&holder->lock);
  return c;
}

enum dub_err dub_config_holder_reload(struct dub_config_holder *holder, char **why)
{
  struct dub_config *next = NULL;
  enum dub_err rc =
      dub_config_load(holder->dir, holder->schema_dir, holder->parts, &next, why);
  if(!rc && holder->check)
    rc = holder->check(holder->check_ctx, next, why);
  if(rc) {
    dub_config_unref(next);
    return rc;
  }
  pthread_mutex_lock(&holder->lock);
  struct dub_config *old = holder->current;
  holder->current = next;
  pthread_mutex_unlock(&holder->lock);
  dub_config_unref(old);
  return DUB_OK;
}

enum dub_err dub_config_holder_set_check(struct dub_config_holder *holder,
                                         dub_config_check_fn check, void *ctx, char **why)
{
  holder->check = check;
  holder->check_ctx = ctx;
  *why = NULL;
  if(!check)
    return DUB_OK;
  struct dub_config *current = dub_config_holder_get(holder);
  enum dub_err rc = check(ctx, current, why);
  dub_config_unref(current);
  return rc;
}

void dub_config_holder_free(struct dub_config_holder *holder)
{
  if(!holder)
    return;
  dub_config_unref(holder->current);
  pthread_mutex_destroy(&holder->lock);
  free(holder->dir);
  free(holder->schema_dir);
  free(holder);
}
