/* on_case_events.c - duban.cases, many events at a time: received and returned cases
 * are (re)assigned and closed or cancelled ones leave the workload. Each case's new
 * state is committed to Redis together with its workload change before its
 * duban.case.assigned is published, so a redelivery publishes the recorded event again
 * (same id, same officer) instead of deciding anew, and counts nothing twice. */
#include "assignment.h"
#include "casestate.h"
#include "rules.h"
#include "store.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "runtime/runtime.h"
#include "schema/schema.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CASES_TOPIC "duban.cases"

enum kind { KIND_OTHER, KIND_RECEIVED, KIND_RETURNED, KIND_CLOSED };

/* One case of the batch. */
struct work {
  const char *case_id; /* borrowed from the first item of the case */
  json_t *state;       /* owned; NULL while unknown */
  long long seq;       /* commits made to the stored state */
  long long published; /* the latest attempt known to be in duban.cases */
};

/* One message of the batch. */
struct item {
  struct dub_case_event ev;
  enum kind kind;
  struct work *w;
  json_t *out;    /* the duban.case.assigned to publish (new or recorded), owned */
  bool fresh;     /* decided now, not a redelivery: counted once published */
  bool committed; /* a commit is in the pipeline, at index 'commit' */
  size_t commit;
};

struct batch {
  struct assignment *a;
  const struct assignment_model *m;   /* NULL until the first event to act on */
  enum dub_err failed;                /* set: every event to act on fails so */
  bool *fetched;                      /* per unit: load[] holds its officers */
  unsigned *tickets;                  /* per unit: round-robin tickets left */
  unsigned long long *next;           /* per unit: the next ticket */
  long long *load;                    /* per officer: open cases */
  struct dub_cache_pipeline *commits; /* a->commits, one chunk's */
  size_t ncommits;
  json_t *index; /* case id -> index in works */
  struct work *works;
  size_t nworks;
  struct dub_ce_batch *writes; /* what is in flight to duban.cases */
  enum dub_err *sent;          /* per message: its write's outcome */
};

/* ---- decoding ---------------------------------------------------------------------- */

/* Whether the record is a duban.case.assigned this service wrote: it is skipped without
 * being parsed, which halves the parsing of a busy duban.cases. dub_ce_encode writes
 * members in this order and ids of ours hold no quote. */
static bool own_event(const struct dub_kafka_msg *msg)
{
  static const char head[] = "{\"specversion\":\"1.0\",\"id\":\"";
  static const char tail[] =
      "\",\"source\":\"" ASSIGNMENT_SOURCE "\",\"type\":\"" ASSIGNMENT_ASSIGNED "\",";
  const void *ct = NULL;
  size_t ct_len = 0;
  const char *v = msg->value;
  size_t len = msg->value_len, i = sizeof head - 1;
  if(!dub_kafka_msg_header(msg, "content-type", &ct, &ct_len) ||
     ct_len < sizeof DUB_CE_CONTENT_TYPE - 1 ||
     memcmp(ct, DUB_CE_CONTENT_TYPE, sizeof DUB_CE_CONTENT_TYPE - 1) != 0 ||
     len < sizeof head - 1 || memcmp(v, head, sizeof head - 1) != 0)
    return false;
  while(i < len && v[i] != '"' && v[i] != '\\')
    i++;
  return len - i >= sizeof tail - 1 && memcmp(v + i, tail, sizeof tail - 1) == 0;
}

static enum kind kind_of(const char *type)
{
  if(strcmp(type, ASSIGNMENT_RECEIVED) == 0)
    return KIND_RECEIVED;
  if(strcmp(type, ASSIGNMENT_RETURNED) == 0)
    return KIND_RETURNED;
  if(strcmp(type, ASSIGNMENT_CLOSED) == 0 || strcmp(type, ASSIGNMENT_CANCELLED) == 0)
    return KIND_CLOSED;
  return KIND_OTHER;
}

enum dub_err assignment_event_check(struct assignment *a, const struct dub_case_event *ev,
                                    char **why)
{
  enum kind kind = kind_of(ev->type);
  const struct dub_schema *schema =
      kind == KIND_RECEIVED   ? a->received
      : kind == KIND_RETURNED ? a->returned
      : kind == KIND_CLOSED
          ? (strcmp(ev->type, ASSIGNMENT_CLOSED) == 0 ? a->closed : a->cancelled)
          : NULL;
  json_t *errors = NULL;
  if(!schema || !dub_schema_validate(schema, ev->data, &errors))
    return DUB_OK;
  char *prefix = dub_xasprintf("%s data", ev->type);
  *why = dub_schema_describe(prefix, errors);
  free(prefix);
  json_decref(errors);
  return DUB_ERR_SCHEMA;
}

/* Decodes and validates one message; DUB_OK with it->kind KIND_OTHER for what is not
 * ours to act on. */
static enum dub_err classify(struct assignment *a, const struct dub_kafka_msg *msg,
                             struct item *it, char **why)
{
  if(own_event(msg))
    return DUB_OK;
  enum dub_err rc = dub_case_event_decode(msg, &it->ev, why);
  if(!rc)
    rc = assignment_event_check(a, &it->ev, why);
  if(!rc)
    it->kind = kind_of(it->ev.type);
  return rc;
}

/* ---- deciding ---------------------------------------------------------------------- */

static const char *source_of(const struct item *it)
{
  return dub_json_str(it->ev.event, "source");
}

/* Makes sure load[] holds unit u's officers and, for round robin, hands out a ticket. */
static enum dub_err prepare_unit(struct batch *b, int u, bool ticket,
                                 unsigned long long *out)
{
  size_t nu = b->m->nunits;
  if(!b->fetched[u] || (ticket && !b->tickets[u])) {
    bool *want = dub_xcalloc(nu, sizeof *want);
    unsigned *count = dub_xcalloc(nu, sizeof *count);
    want[u] = !b->fetched[u];
    count[u] = ticket && !b->tickets[u] ? 1 : 0;
    enum dub_err rc =
        assignment_store_prepare(b->a->cache, b->m, want, count, b->load, b->next);
    if(!rc && count[u])
      b->tickets[u] = 1;
    b->fetched[u] = b->fetched[u] || !rc;
    free(want);
    free(count);
    if(rc)
      return rc;
  }
  if(ticket) {
    *out = b->next[u]++;
    b->tickets[u]--;
  }
  return DUB_OK;
}

/* A copy of who holds the case, taken before a transition replaces it. */
struct held {
  char *officer, *unit;
};

static void hold(const json_t *state, struct held *h)
{
  struct assignment_holder now;
  assignment_state_holder(state, &now);
  h->officer = dub_xstrdup(now.officer);
  h->unit = dub_xstrdup(now.unit);
}

static char *counter_key(const char *officer, const char *unit)
{
  return officer ? assignment_officer_key(officer)
         : unit  ? assignment_manual_key(unit)
                 : NULL;
}

static void move_load(struct batch *b, const char *officer, long long delta)
{
  int i = officer ? assignment_model_officer(b->m, officer) : -1;
  if(i >= 0)
    b->load[i] += delta;
}

/* Queues the commit of the case's new state with the workload moving from 'before' to
 * its holder now. */
static void commit(struct batch *b, struct item *it, struct held *before)
{
  struct work *w = it->w;
  struct assignment_holder after;
  assignment_state_holder(w->state, &after);
  char *from = counter_key(before->officer, before->unit);
  char *to = counter_key(after.officer, after.unit);
  struct assignment_commit c = {.case_id = w->case_id, .seq = w->seq, .state = w->state};
  if(!(from && to && strcmp(from, to) == 0)) {
    if(from) {
      c.keys[c.ncounters] = from;
      c.deltas[c.ncounters++] = -1;
      move_load(b, before->officer, -1);
    }
    if(to) {
      c.keys[c.ncounters] = to;
      c.deltas[c.ncounters++] = 1;
      move_load(b, after.officer, 1);
    }
  }
  assignment_store_commit_add(b->commits, b->a->script_sha, &c);
  it->committed = true;
  it->commit = b->ncommits++;
  w->seq++;
  free(from);
  free(to);
  free(before->officer);
  free(before->unit);
}

static void add_unique(json_t *list, const char *id)
{
  if(id && !dub_json_array_has_str(list, id))
    json_array_append_new(list, json_string(id));
}

/* Routes the case, chooses its officer and builds the event; the state applies it. */
static enum dub_err assign(struct batch *b, struct item *it)
{
  const struct assignment_model *m = b->m;
  json_t *state = it->w->state;
  const json_t *data = it->ev.data;
  struct assignment_input in = {.type = it->ev.type,
                                .source = source_of(it),
                                .id = it->ev.id,
                                .traceparent = it->ev.traceparent};
  json_t *excluded = json_deep_copy(assignment_state_excluded(state));
  long long returns = assignment_state_returns(state);
  if(!excluded)
    excluded = json_array();
  if(it->kind == KIND_RETURNED) {
    struct assignment_holder h;
    assignment_state_holder(state, &h);
    in.reason_code = dub_json_str(data, "reason_code");
    in.actor = dub_json_str(data, "actor");
    /* Never back to whoever returned it, nor to anyone who did before. */
    add_unique(excluded, h.officer);
    add_unique(excluded, in.actor);
    returns++;
  }
  struct assignment_facts facts;
  struct assignment_route route;
  struct assignment_result r = {0};
  unsigned long long ticket = 0;
  assignment_facts_read(m, assignment_state_facts(state), &facts);
  assignment_route(m, &facts, &route);
  enum dub_err rc =
      prepare_unit(b, route.unit, route.strategy == ASSIGNMENT_ROUND_ROBIN, &ticket);
  if(rc) {
    json_decref(excluded);
    return rc;
  }
  bool *ex = dub_xcalloc(m->nofficers + 1, sizeof *ex);
  size_t i;
  json_t *v;
  json_array_foreach(excluded, i, v)
  {
    int o = assignment_model_officer(m, json_string_value(v));
    if(o >= 0)
      ex[o] = true;
  }
  struct assignment_ask ask = {.facts = &facts,
                               .route = &route,
                               .load = b->load,
                               .excluded = ex,
                               .ticket = ticket,
                               .no_officer = returns >= ASSIGNMENT_MAX_RETURNS};
  assignment_choose(m, &ask, &r);
  it->out = assignment_event_new(m, state, &in, &route, &r, excluded, returns,
                                 dub_time_now_ms());
  it->fresh = true;
  struct held before;
  hold(state, &before);
  assignment_state_apply_assigned(state, it->out);
  commit(b, it, &before);
  assignment_result_release(&r);
  free(ex);
  json_decref(excluded);
  return DUB_OK;
}

/* Decides what one event does to its case; DUB_OK also when it waits for a commit. */
static enum dub_err decide(struct batch *b, struct item *it, char **why)
{
  struct work *w = it->w;
  const char *source = source_of(it), *id = it->ev.id, *case_id = it->ev.case_id;
  struct held before;
  if(w->state && assignment_state_applied(w->state, source, id)) {
    /* A redelivery: publish what was decided then, unless it (or a later assignment)
     * is known to be in duban.cases already. */
    const json_t *out = assignment_state_output(w->state, source, id);
    json_int_t attempt = json_integer_value(json_object_get(out, "attempt"));
    it->out = out && attempt > w->published
                  ? assignment_event_wrap(out, it->ev.traceparent)
                  : NULL;
    dub_metrics_counter_add(
        dub_runtime_metrics(b->a->rt), "duban_assignment_redeliveries_total",
        "Events of duban.cases that came again after they were "
        "applied, and the assignments republished for them.",
        it->out ? "republished=\"true\"" : "republished=\"false\"", 1);
    return DUB_OK;
  }
  switch(it->kind) {
  case KIND_RECEIVED:
    if(w->state && assignment_state_current(w->state)) {
      *why = dub_xasprintf("case %s was received and assigned before", case_id);
      return DUB_ERR_CONFLICT;
    }
    if(!w->state)
      w->state = assignment_state_new(case_id);
    assignment_state_set_facts(w->state, it->ev.data);
    if(assignment_state_open(w->state))
      return assign(b, it);
    /* Closed before it was ever assigned (seen so by a rebuild): nobody gets it. */
    hold(w->state, &before);
    assignment_state_apply_ack(w->state, source, id);
    commit(b, it, &before);
    return DUB_OK;
  case KIND_RETURNED:
    if(!w->state) {
      *why = dub_xasprintf("return of case %s, which assignment does not know", case_id);
      return DUB_ERR_NOT_FOUND;
    }
    if(!assignment_state_current(w->state) || !assignment_state_open(w->state)) {
      *why =
          dub_xasprintf("return of case %s, which is %s", case_id,
                        assignment_state_open(w->state) ? "not assigned yet" : "closed");
      return DUB_ERR_CONFLICT;
    }
    return assign(b, it);
  case KIND_CLOSED:
    if(!w->state) {
      *why = dub_xasprintf("%s of case %s, which assignment does not know", it->ev.type,
                           case_id);
      return DUB_ERR_NOT_FOUND;
    }
    hold(w->state, &before);
    assignment_state_apply_closed(w->state, source, id);
    commit(b, it, &before);
    return DUB_OK;
  case KIND_OTHER:
    break;
  }
  return DUB_OK;
}

/* ---- publishing -------------------------------------------------------------------- */

/* Whether an earlier message of msgs[i]'s partition failed in this batch: then the
 * partition is rewound to it and this one comes again (its recorded event with it). */
static bool behind_failure(const struct dub_kafka_msg *msgs, const enum dub_err *results,
                           size_t i)
{
  for(size_t j = 0; j < i; j++)
    if((results[j] == DUB_ERR_UNAVAILABLE || results[j] == DUB_ERR_CONFLICT) &&
       msgs[j].partition == msgs[i].partition)
      return true;
  return false;
}

/* ---- metrics ----------------------------------------------------------------------- */

static void count(struct assignment *a, const struct item *it)
{
  struct dub_metrics *metrics = dub_runtime_metrics(a->rt);
  const json_t *data = json_object_get(it->out, "data");
  const char *rule = dub_json_str(data, "rule"), *unit = dub_json_str(data, "unit");
  const char *officer = dub_json_str(data, "officer");
  const char *outcome = !officer                        ? "needs_manual"
                        : strcmp(rule, "fallback") == 0 ? "fallback"
                                                        : "assigned";
  char *labels =
      dub_xasprintf("rule=\"%s\",unit=\"%s\",outcome=\"%s\"", rule, unit, outcome);
  dub_metrics_counter_add(metrics, "duban_assignment_total",
                          "Assignments and reassignments by rule, unit and outcome.",
                          labels, 1);
  free(labels);
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(data, "recused"), i, r)
  {
    labels = dub_xasprintf("rule=\"%s\",unit=\"%s\",reason=\"%s\"", rule, unit,
                           dub_json_str(r, "reason"));
    dub_metrics_counter_add(metrics, "duban_assignment_recusals_total",
                            "Officers recused from a case, by rule, unit and reason.",
                            labels, 1);
    free(labels);
  }
  const char *reason_code = dub_json_str(data, "reason_code");
  if(reason_code) {
    labels = dub_xasprintf("reason_code=\"%s\"", reason_code);
    dub_metrics_counter_add(metrics, "duban_assignment_returns_total",
                            "Returned cases reassigned, by the return's reason code.",
                            labels, 1);
    free(labels);
  }
  enum dub_log_level level = officer && !reason_code ? DUB_LOG_DEBUG : DUB_LOG_INFO;
  dub_log_at(level, it->ev.case_id, it->ev.traceparent,
             "%s: unit %s, officer %s, rule %s, attempt %lld",
             dub_json_str(it->out, "id"), unit,
             officer ? officer : "(none: needs manual assignment)", rule,
             (long long)json_integer_value(json_object_get(data, "attempt")));
}

/* ---- a second decoding thread ----------------------------------------------------- */

/* Parsing and validating an event is a third of the work; a second thread does it for
 * half of each batch while the consumer's thread does the other half. */
struct assignment_decoder {
  struct assignment *a;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stop, posted;
  const struct dub_kafka_msg *msgs;
  struct item *items;
  enum dub_err *results;
  char **whys;
  size_t from, to;
};

/* Only batches this large are shared: below, handing over costs more than it saves. */
#define SHARE_FROM 32

static void classify_range(struct assignment *a, const struct dub_kafka_msg *msgs,
                           struct item *items, enum dub_err *results, char **whys,
                           size_t from, size_t to)
{
  for(size_t i = from; i < to; i++)
    results[i] = classify(a, &msgs[i], &items[i], &whys[i]);
}

/* The decoding thread: waits for a range, decodes it, says so. */
static void *decoder_run(void *arg)
{
  struct assignment_decoder *d = arg;
  pthread_mutex_lock(&d->lock);
  for(;;) {
    while(!d->posted && !d->stop)
      pthread_cond_wait(&d->cond, &d->lock);
    if(d->stop)
      break;
    pthread_mutex_unlock(&d->lock);
    classify_range(d->a, d->msgs, d->items, d->results, d->whys, d->from, d->to);
    pthread_mutex_lock(&d->lock);
    d->posted = false;
    pthread_cond_broadcast(&d->cond);
  }
  pthread_mutex_unlock(&d->lock);
  return NULL;
}

void assignment_decoder_start(struct assignment *a)
{
  struct assignment_decoder *d = dub_xcalloc(1, sizeof *d);
  d->a = a;
  pthread_mutex_init(&d->lock, NULL);
  pthread_cond_init(&d->cond, NULL);
  dub_xthread_create(&d->thread, decoder_run, d, "decoder");
  a->decoder = d;
}

void assignment_decoder_stop(struct assignment *a)
{
  struct assignment_decoder *d = a->decoder;
  if(!d)
    return;
  pthread_mutex_lock(&d->lock);
  d->stop = true;
  pthread_cond_broadcast(&d->cond);
  pthread_mutex_unlock(&d->lock);
  pthread_join(d->thread, NULL);
  pthread_cond_destroy(&d->cond);
  pthread_mutex_destroy(&d->lock);
  free(d);
  a->decoder = NULL;
}

/* Decodes every message, the second half on the decoding thread when there is one. */
static void decode_all(struct assignment *a, const struct dub_kafka_msg *msgs,
                       struct item *items, size_t n, enum dub_err *results, char **whys)
{
  struct assignment_decoder *d = a->decoder;
  size_t half = d && n >= SHARE_FROM ? n / 2 : n;
  if(half < n) {
    pthread_mutex_lock(&d->lock);
    d->msgs = msgs;
    d->items = items;
    d->results = results;
    d->whys = whys;
    d->from = half;
    d->to = n;
    d->posted = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
  }
  classify_range(a, msgs, items, results, whys, 0, half);
  if(half < n) {
    pthread_mutex_lock(&d->lock);
    while(d->posted)
      pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
  }
}

/* ---- the batch --------------------------------------------------------------------- */

/* Messages are worked on in chunks: while one chunk's writes are in flight to Kafka,
 * the next is decoded, decided and committed. */
#define CHUNK 100

/* Finds or adds the case of an item. */
static struct work *work_of(struct batch *b, const char *case_id)
{
  json_t *at = json_object_get(b->index, case_id);
  if(at)
    return &b->works[json_integer_value(at)];
  b->works[b->nworks].case_id = case_id;
  json_object_set_new(b->index, case_id, json_integer((json_int_t)b->nworks));
  return &b->works[b->nworks++];
}

/* Once, at the first event to act on: ready, the model, the script, the arrays. */
static enum dub_err start(struct batch *b)
{
  struct assignment *a = b->a;
  char *reason = NULL;
  if(!assignment_keeper_ready(a, &reason)) {
    free(reason);
    return DUB_ERR_UNAVAILABLE;
  }
  b->m = assignment_model_current(a);
  if(!b->m ||
     (!a->script_sha[0] && assignment_store_load_script(a->cache, a->script_sha))) {
    b->m = NULL;
    return DUB_ERR_UNAVAILABLE;
  }
  b->fetched = dub_xcalloc(b->m->nunits + 1, sizeof *b->fetched);
  b->tickets = dub_xcalloc(b->m->nunits + 1, sizeof *b->tickets);
  b->next = dub_xcalloc(b->m->nunits + 1, sizeof *b->next);
  b->load = dub_xcalloc(b->m->nofficers + 1, sizeof *b->load);
  return DUB_OK;
}

/* Reads the states of the cases works[first..] and, for the chunk's items, the
 * workloads and tickets their routes are likely to need: two round trips.
 * prepare_unit() fetches whatever this guessed wrong. */
static enum dub_err load(struct batch *b, struct item *items, size_t n, size_t first)
{
  size_t count = b->nworks - first;
  const char **ids = dub_xcalloc(count + 1, sizeof *ids);
  struct assignment_stored *stored = dub_xcalloc(count + 1, sizeof *stored);
  for(size_t k = 0; k < count; k++)
    ids[k] = b->works[first + k].case_id;
  enum dub_err rc = assignment_store_load(b->a->cache, ids, count, stored);
  for(size_t k = 0; !rc && k < count; k++) {
    b->works[first + k].state = stored[k].state;
    b->works[first + k].seq = stored[k].seq;
    b->works[first + k].published = stored[k].published;
  }
  free(stored);
  free(ids);
  if(rc)
    return rc;
  size_t nu = b->m->nunits;
  bool *want = dub_xcalloc(nu + 1, sizeof *want);
  unsigned *tickets = dub_xcalloc(nu + 1, sizeof *tickets);
  for(size_t i = 0; i < n; i++) {
    struct item *it = &items[i];
    const json_t *facts = it->kind == KIND_RECEIVED ? it->ev.data
                          : it->kind == KIND_RETURNED && it->w->state
                              ? assignment_state_facts(it->w->state)
                              : NULL;
    if(!facts ||
       (it->w->state && assignment_state_applied(it->w->state, source_of(it), it->ev.id)))
      continue;
    struct assignment_facts f;
    struct assignment_route route;
    assignment_facts_read(b->m, facts, &f);
    assignment_route(b->m, &f, &route);
    want[route.unit] = !b->fetched[route.unit];
    if(route.strategy == ASSIGNMENT_ROUND_ROBIN)
      tickets[route.unit]++;
  }
  rc = assignment_store_prepare(b->a->cache, b->m, want, tickets, b->load, b->next);
  for(size_t u = 0; !rc && u < nu; u++) {
    b->fetched[u] = b->fetched[u] || want[u];
    if(tickets[u])
      b->tickets[u] = tickets[u]; /* any left from the last chunk are given up */
  }
  free(want);
  free(tickets);
  return rc;
}

/* Sends the chunk's commits; a failed one fails its item. */
static void run_commits(struct batch *b, struct item *items, size_t n,
                        enum dub_err *results)
{
  struct dub_cache_reply **replies = NULL;
  bool rebuild = false, noscript = false;
  enum dub_err rc = dub_cache_pipeline_exec_each(b->a->cache, b->commits, &replies);
  for(size_t i = 0; i < n; i++) {
    if(!items[i].committed || results[i])
      continue;
    results[i] = rc ? DUB_ERR_UNAVAILABLE
                    : assignment_store_commit_result(replies[items[i].commit], &rebuild,
                                                     &noscript);
    if(results[i] == DUB_ERR_CONFLICT) {
      dub_log_at(DUB_LOG_WARN, items[i].ev.case_id, NULL,
                 "case state changed meanwhile (another instance?): retrying");
      results[i] = DUB_ERR_UNAVAILABLE;
    }
  }
  if(replies)
    dub_cache_replies_free(replies, b->ncommits);
  dub_cache_pipeline_reset(b->commits);
  b->ncommits = 0;
  if(noscript)
    b->a->script_sha[0] = '\0'; /* Redis restarted: load it again next time */
  if(rebuild)
    assignment_keeper_poke(b->a);
}

/* Decides and commits the decoded msgs[from..to), and puts their writes in flight. */
static void chunk(struct batch *b, const struct dub_kafka_msg *msgs, struct item *items,
                  size_t from, size_t to, enum dub_err *results, char **whys)
{
  size_t first = b->nworks, acting = 0;
  for(size_t i = from; i < to; i++) {
    if(!results[i] && items[i].kind != KIND_OTHER) {
      acting++;
      if(!b->m && !b->failed)
        b->failed = start(b);
      if(b->failed)
        results[i] = b->failed;
      else
        items[i].w = work_of(b, items[i].ev.case_id);
    }
  }
  if(!acting || b->failed)
    return;
  if(load(b, items + from, to - from, first)) {
    for(size_t i = from; i < to; i++)
      if(items[i].w)
        results[i] = DUB_ERR_UNAVAILABLE;
    return;
  }
  for(size_t i = from; i < to; i++) {
    if(results[i] || !items[i].w)
      continue;
    if(behind_failure(msgs, results, i))
      results[i] = DUB_ERR_UNAVAILABLE;
    else
      results[i] = decide(b, &items[i], &whys[i]);
  }
  if(b->ncommits)
    run_commits(b, items + from, to - from, results + from);
  for(size_t i = from; i < to; i++) {
    if(!items[i].out || results[i])
      continue;
    if(behind_failure(msgs, results, i))
      results[i] = DUB_ERR_UNAVAILABLE;
    else
      dub_ce_batch_add(b->writes, CASES_TOPIC, items[i].ev.case_id, items[i].out,
                       &b->sent[i]);
  }
}

/* After the last acknowledgement: a write that failed fails its message (the partition
 * comes again and the recorded event with it; an event that does not validate is a bug
 * and its message goes to the DLQ). What was written is noted, so that a redelivery
 * does not write it again; should the note fail, a redelivery writes a second copy
 * (same id, same content), which consumers skip. */
static void settle(struct batch *b, struct item *items, size_t n, enum dub_err *results)
{
  struct dub_cache_pipeline *notes = dub_cache_pipeline_new();
  struct dub_cache_reply **replies = NULL;
  for(size_t i = 0; i < n; i++) {
    if(!items[i].out || results[i])
      continue;
    if(b->sent[i]) {
      /* Review C12f: only what may pass is retried (the partition waits for it); a
       * write the broker or librdkafka will never take (too large, invalid) goes to
       * the DLQ, so that one record does not stall the events behind it. */
      enum dub_err e = b->sent[i];
      results[i] =
          e == DUB_ERR_MALFORMED || e == DUB_ERR_TOO_LARGE || e == DUB_ERR_INVALID
              ? e
              : DUB_ERR_UNAVAILABLE;
      continue;
    }
    const json_t *data = json_object_get(items[i].out, "data");
    assignment_store_published_add(notes, items[i].ev.case_id,
                                   json_integer_value(json_object_get(data, "attempt")));
    if(items[i].fresh)
      count(b->a, &items[i]);
  }
  size_t nnotes = dub_cache_pipeline_count(notes);
  if(nnotes && !dub_cache_pipeline_exec(b->a->cache, notes, &replies))
    dub_cache_replies_free(replies, nnotes);
  dub_cache_pipeline_free(notes);
}

void assignment_on_case_events(void *ctx, const struct dub_kafka_msg *msgs, size_t n,
                               enum dub_err *results, char **whys)
{
  struct assignment *a = ctx;
  struct item *items = dub_xcalloc(n, sizeof *items);
  struct batch b = {.a = a,
                    .commits = a->commits,
                    .index = json_object(),
                    .works = dub_xcalloc(n, sizeof *b.works),
                    .writes = dub_ce_batch_new(dub_runtime_producer(a->rt)),
                    .sent = dub_xcalloc(n, sizeof *b.sent)};
  decode_all(a, msgs, items, n, results, whys);
  for(size_t from = 0; from < n; from += CHUNK)
    chunk(&b, msgs, items, from, from + CHUNK < n ? from + CHUNK : n, results, whys);
  dub_ce_batch_wait(b.writes);
  settle(&b, items, n, results);
  for(size_t i = 0; i < n; i++) {
    json_decref(items[i].out);
    dub_case_event_release(&items[i].ev);
  }
  for(size_t k = 0; k < b.nworks; k++)
    json_decref(b.works[k].state);
  dub_cache_pipeline_reset(b.commits);
  free(b.fetched);
  free(b.tickets);
  free(b.next);
  free(b.load);
  free(b.sent);
  json_decref(b.index);
  free(b.works);
  free(items);
}
