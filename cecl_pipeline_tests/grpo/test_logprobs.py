import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from cecl_pipeline.grpo.logprobs import completion_logprobs, completion_mask, sequence_logprobs, sft_loss
from cecl_pipeline.llm.config import NAMED_CONFIGS
from cecl_pipeline.llm.model import init_params
from cecl_pipeline.llm.sampler import SamplingConfig, sample
from cecl_pipeline_tests.llm.reference import left_padded_batch, our_config, our_params, reference_model


def test_logprobs_match_transformers_on_left_padded_sequences():
    reference = reference_model(2, False)
    ids, valid = left_padded_batch([9, 4, 12], reference.config.vocab_size)
    with torch.no_grad():
        logits = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(valid.astype(np.int64))).logits
        expected = torch.log_softmax(logits[:, :-1].double(), -1).gather(-1, torch.tensor(ids[:, 1:, None])).squeeze(-1).numpy()
    ours = sequence_logprobs(our_params(reference), our_config(reference), jnp.asarray(ids), jnp.asarray(valid))
    scored = valid[:, :-1] & valid[:, 1:]
    assert np.abs(np.asarray(ours) - expected)[scored].max() < 1e-4


def test_sampler_logprobs_equal_recomputed_completion_logprobs():
    reference = reference_model(2, True)
    config, params = our_config(reference), our_params(reference)
    ids, valid = left_padded_batch([7, 3], config.vocab_size)
    result = sample(params, config, ids, valid, SamplingConfig(10, temperature=1.0, eos_token_ids=(5,)), jax.random.key(3))
    recomputed = sequence_logprobs(params, config, result.sequences, result.sequence_valid)
    mask = completion_mask(ids.shape[1], result.sequence_valid)
    assert int(mask.sum()) == int(result.lengths.sum())
    from_sampler = np.zeros(mask.shape, np.float32)
    from_sampler[:, ids.shape[1] - 1 :] = np.asarray(result.logprobs)
    assert np.abs(np.asarray(recomputed) - from_sampler)[np.asarray(mask)].max() < 1e-4
    # The completion-only pass (head on the completion positions) scores the same tokens the same way.
    completion = completion_logprobs(params, config, result.sequences, result.sequence_valid, ids.shape[1])
    assert completion.shape == result.logprobs.shape
    scored = np.asarray(result.sequence_valid[:, ids.shape[1]:])
    assert np.abs(np.asarray(completion) - np.asarray(recomputed)[:, ids.shape[1] - 1 :])[scored].max() < 1e-5


def test_a_group_computes_its_prompt_once_with_the_same_logprobs_and_gradients():
    """share=G (each prompt run once into a cache its G completions attend to) against every row on its own."""
    reference = reference_model(2, False)
    config, params = our_config(reference), our_params(reference)
    ids, valid = left_padded_batch([9, 4], config.vocab_size)
    group = 3
    result = sample(params, config, ids, valid, SamplingConfig(7, eos_token_ids=tuple(range(0, config.vocab_size, 6))), jax.random.key(1), group_size=group)
    sequences, sequence_valid, width = result.sequences, result.sequence_valid, ids.shape[1]
    scored = np.asarray(sequence_valid[:, width:])
    assert not scored.all()  # some completions stopped early: padding inside the group

    row_weights = np.random.default_rng(0).normal(size=(len(scored), 1))  # as advantages weigh rows: a row mix-up shows

    def weighted_sum(p, share):
        return (completion_logprobs(p, config, sequences, sequence_valid, width, share) * scored * row_weights).sum()

    shared, alone = (completion_logprobs(params, config, sequences, sequence_valid, width, share) for share in (group, 1))
    full = np.asarray(sequence_logprobs(params, config, sequences, sequence_valid))[:, width - 1 :]
    assert np.abs(np.asarray(shared) - np.asarray(alone))[scored].max() < 1e-5
    assert np.abs(np.asarray(shared) - full)[scored].max() < 1e-5
    grads_shared, grads_alone = (jax.grad(weighted_sum)(params, share) for share in (group, 1))
    gaps = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-12)), grads_shared, grads_alone)
    assert max(jax.tree_util.tree_leaves(gaps)) < 1e-4
    embed = np.asarray(grads_shared["embed_tokens"]["embedding"])
    assert np.abs(embed[np.unique(np.asarray(ids)[:, :-1])]).max() > 0  # the prompt tokens got gradient through the shared cache


def test_a_few_sft_steps_lower_the_loss_on_a_fixed_batch():
    config = NAMED_CONFIGS["tiny"].replace(num_hidden_layers=2, vocab_size=128)
    params = init_params(config, seed=0)
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(5, 128, (4, 24)), jnp.int32)
    valid = jnp.ones(tokens.shape, bool)
    optimizer = optax.adam(3e-3)
    state = optimizer.init(params)
    loss_and_grad = jax.jit(jax.value_and_grad(lambda p: sft_loss(p, config, tokens, valid, 16)))  # the "answer": the last 8 tokens
    losses = []
    for _ in range(8):
        loss, grads = loss_and_grad(params)
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0] and np.isclose(losses[0], np.log(128), rtol=0.05)


def test_the_sft_loss_is_the_full_sequence_nll_of_the_answer_tokens():
    """Scoring only the answer positions gives the loss (and gradient) of the full forward masked to them."""
    config = NAMED_CONFIGS["tiny"].replace(num_hidden_layers=2, vocab_size=128)
    params = init_params(config, seed=1)
    rng = np.random.default_rng(1)
    width, answer = 20, 6
    tokens = jnp.asarray(rng.integers(5, 128, (3, width + answer)), jnp.int32)
    valid = jnp.ones(tokens.shape, bool).at[0, :4].set(False).at[1, -2:].set(False)  # a left-padded prompt; an answer that ends early
    mask = completion_mask(width, valid)

    def full(p):
        logprobs = sequence_logprobs(p, config, tokens, valid)
        return -(logprobs * mask).sum() / mask.sum()

    def scored(p):
        return sft_loss(p, config, tokens, valid, width)

    assert float(scored(params)) == pytest.approx(float(full(params)), rel=1e-5)
    gaps = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-12)), jax.grad(scored)(params),
                                  jax.grad(full)(params))
    assert max(jax.tree_util.tree_leaves(gaps)) < 1e-4
