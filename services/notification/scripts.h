/* scripts.h - Lua scripts on a message's hash (KEYS[1], notification_msg_key()). */
#ifndef NOTIFICATION_SCRIPTS_H
#define NOTIFICATION_SCRIPTS_H

/* EVAL script 1 <message key> <state> <now ms> [<expected attempts>]: stores the state
 * unless a delivery report's outcome would be overwritten; "sending" with the expected
 * attempts is a compare-and-set. Answers {state now, attempts} ({"taken", -1} when
 * another instance began an attempt since). */
extern const char notification_state_script[];

/* EVAL script 2 <message key> <case keys set> <now ms> <job> <key>: claims a job for
 * sending. Answers {"new", attempts} for a job to send, else {its state, attempts}. */
extern const char notification_claim_script[];

#endif
