/* adamw.h - torch.optim.AdamW over named parameters.
 *
 * The update is torch's (decoupled weight decay, amsgrad off), per parameter:
 *   step += 1
 *   p *= 1 - lr * weight_decay
 *   m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g^2
 *   p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * run by the backend's adamw_step kernel on the parameter's device.
 *
 * Parameters are chosen by name as the official train.py's set_params does:
 * a parameter is trainable when its name CONTAINS any of the given substrings
 * ("queries_embedder" selects "model.model.transformer_module.queries_embedder.weight").
 * Each adamw_add_params* call makes one parameter group with its own lr
 * (torch's param_groups); the groups are numbered 0, 1, ... in call order.
 *
 * "No gradient": torch skips a parameter whose .grad is None, i.e. one that no
 * backward reached since zero_grad (torch >= 2.0 zero_grad sets grads to None),
 * and its step count, moments and weight decay stay as they were. Here the
 * gradient buffers are persistent (they come from the state arena, so that
 * gradients can accumulate over several ctx steps), so reaching is recorded
 * separately: adamw_note_backward() walks a context's tape after ctx_backward
 * (before ctx_reset) and marks every parameter that is an input of a node whose
 * backward ran - exactly the parameters torch would give a .grad. adamw_mark_grad()
 * marks one by hand (gradients written by other means). adamw_zero_grad() zeroes
 * the buffers and clears the marks; adamw_step() steps the marked parameters only.
 *
 * Typical step:
 *   loss = ...forward on ctx...;
 *   ctx_backward(ctx, loss, NULL);
 *   adamw_note_backward(opt, ctx);
 *   adamw_step(opt);
 *   adamw_zero_grad(opt);
 *   ctx_reset(ctx);
 *
 * Optimizer state for checkpoints: the moments of parameter i are tensors named
 * "adamw.m.<name>" and "adamw.v.<name>" (adamw_state), plus its step count
 * (torch's state["step"], per parameter: a skipped parameter does not count). */
#ifndef STEPSTONE_ADAMW_H
#define STEPSTONE_ADAMW_H

#include <stdint.h>

#include "tape.h"

typedef struct {
    /* doubles, like the Python floats torch forms its scalars from */
    double lr;           /* learning rate of the default group */
    double beta1, beta2; /* moment decay rates */
    double eps;          /* added to sqrt(v_hat) */
    double weight_decay; /* decoupled: p *= 1 - lr * weight_decay each step */
} adamw_config_t;

typedef struct adamw adamw_t;

/* torch.optim.AdamW's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2. */
adamw_config_t adamw_config_default(void);

/* An optimizer whose moments and gradient buffers come from state_arena (on
 * the parameters' device; never reset while the optimizer lives; not owned). */
adamw_t *adamw_create(arena_t *state_arena, const adamw_config_t *cfg);
/* Frees the optimizer's host bookkeeping; the tensors stay in the state arena. */
void adamw_destroy(adamw_t *opt);

/* Adds a group with the default config. params[i] is named names[i] (names may
 * be NULL: then params[i]->name). A parameter is selected when its name
 * contains any of the n_patterns substrings; patterns == NULL selects every
 * parameter. Selected parameters get requires_grad = 1, a new zeroed grad buffer
 * from the state arena and zeroed moments. Parameters
 * not selected get requires_grad = 0, except those an earlier call already
 * added, which keep their group (a parameter is in one group only).
 * Returns how many parameters were added. */
int adamw_add_params(adamw_t *opt, tensor_t **params, const char **names, int n, const char *const *patterns,
                     int n_patterns);
/* The same with the group's own learning rate. */
int adamw_add_params_lr(adamw_t *opt, tensor_t **params, const char **names, int n, const char *const *patterns,
                        int n_patterns, double lr);

/* Nonzero when `name` contains any of the patterns (set_params's `if n in name`). */
int adamw_name_selected(const char *name, const char *const *patterns, int n_patterns);

/* Zeroes every gradient buffer and forgets which parameters were reached. */
void adamw_zero_grad(adamw_t *opt);
/* Marks the parameters that ctx's last backward reached (call after ctx_backward,
 * before ctx_reset; once per backward when gradients accumulate over steps). */
void adamw_note_backward(adamw_t *opt, const ctx_t *ctx);
/* Marks parameter i as having a gradient this step. */
void adamw_mark_grad(adamw_t *opt, int i);
/* Updates every marked parameter; returns how many were updated. */
int adamw_step(adamw_t *opt);

/* Learning rates: of one group, or of every group (torch's
 * `for g in optimizer.param_groups: g["lr"] = lr`). */
void adamw_set_lr(adamw_t *opt, double lr);
void adamw_set_group_lr(adamw_t *opt, int group, double lr);
double adamw_group_lr(const adamw_t *opt, int group);
int adamw_n_groups(const adamw_t *opt);

/* ---- inspection and checkpoint state ---- */
int adamw_n_params(const adamw_t *opt);
/* Parameter i (in the order added) and its name, or NULL when i is out of range. */
tensor_t *adamw_param(const adamw_t *opt, int i, const char **name);
/* Index of the parameter named `name`, or -1. */
int adamw_find(const adamw_t *opt, const char *name);
/* The moments ("adamw.m.<name>", "adamw.v.<name>", f32, the parameter's shape)
 * and step count of parameter i; any out pointer may be NULL. Loading a
 * checkpoint writes the moments' data and calls adamw_set_step. */
void adamw_state(const adamw_t *opt, int i, tensor_t **m, tensor_t **v, int64_t *step);
void adamw_set_step(adamw_t *opt, int i, int64_t step);
/* The group of parameter i. */
int adamw_param_group(const adamw_t *opt, int i);
/* How many times adamw_step has run. */
int64_t adamw_steps_taken(const adamw_t *opt);

#endif
