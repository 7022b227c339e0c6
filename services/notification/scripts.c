/* scripts.c - the Lua scripts that keep a message's state in Redis: one place for what
 * the sender, the delivery reports and the rebuild run, and for the unit test that runs
 * them against a real redis-server (tests/unit/notification/test_scripts.c). */
#include "scripts.h"

/* A delivery report may come before the sender has noted the 202 that preceded it:
 * "sent" never overwrites what a report said. "sending" with ARGV[3] is a
 * compare-and-set (review C5): it is stored only if the attempts made so far are still
 * ARGV[3], the number the sender saw when it claimed or leased the job; else another
 * instance took the same job meanwhile, and the answer is "taken". */
const char notification_state_script[] =
    "local st = redis.call('HGET', KEYS[1], 'state') "
    "if ARGV[1] == 'sending' and ARGV[3] and "
    "   tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') ~= tonumber(ARGV[3]) "
    "then "
    "  return {'taken', -1} end "
    "if ARGV[1] == 'sent' and (st == 'delivered' or st == 'permanent-failure') then "
    "  return {st, -1} end "
    "if st == 'delivered' and (ARGV[1] == 'unknown' or ARGV[1] == 'sending') then "
    "  return {st, -1} end "
    "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', ARGV[2]) "
    "if ARGV[1] == 'unknown' then redis.call('HSET', KEYS[1], 'was_unknown', '1') end "
    "if ARGV[1] == 'sending' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end "
    "return {ARGV[1], tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')}";

/* absent -> queued (a new key); queued without a due time -> new again (claimed but
 * never attempted before a crash); anything else -> its state. With the attempts made
 * so far: "sending" is stored only if they are still that many (a second instance
 * that claims the same job, as after a rebalance, then finds it taken). */
const char notification_claim_script[] =
    "local st = redis.call('HGET', KEYS[1], 'state') "
    "if not st then "
    "  redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0, 'job', ARGV[2], "
    "    'created', ARGV[1], 'updated', ARGV[1]) "
    "  redis.call('SADD', KEYS[2], ARGV[3]) "
    "  return {'new', 0} end "
    "local n = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') "
    "if st == 'queued' and redis.call('HEXISTS', KEYS[1], 'due') == 0 then "
    "  return {'new', n} end "
    "return {st, n}";
