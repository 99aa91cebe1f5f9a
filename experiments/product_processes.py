"""A product process for experiments/product.toml, registered by name (`[process] module = "product_processes"`).

Mess3 x Mess3 x golden mean x even: four independent components emitting one token each per step, so
the vocabulary is 3 * 3 * 2 * 2 = 36 tokens and the hidden state space 3 * 3 * 2 * 2 = 36 states
(`hmm_processes.product`). Its belief is the product of the components' beliefs and its myopic entropy
the sum of theirs. (A product with tom_quantum needs generalized-HMM sampling, not yet in
hmm_processes; `[process]` naming products directly is a colleague's branch.)
"""

from hmm_processes import get_process, product, register_process


def mess3_mess3_golden_even(x: float = 0.05, alpha: float = 0.85, x2: float = 0.1, alpha2: float = 0.7,
                            p_golden: float = 0.5, p_even: float = 0.5):
    """Mess3(x, alpha) x Mess3(x2, alpha2) x golden mean(p_golden) x even(p_even): V = 36, S = 36."""
    return product([get_process("mess3", x=x, alpha=alpha), get_process("mess3", x=x2, alpha=alpha2),
                    get_process("golden_mean", p=p_golden), get_process("even", p=p_even)],
                   name="mess3_mess3_golden_even")


register_process("mess3_mess3_golden_even", mess3_mess3_golden_even, overwrite=True)
