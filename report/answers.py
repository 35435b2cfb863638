"""The direct answers to the course's theory questions: what each derivation of the report concludes, in a few
sentences, before the derivation itself. They state results of the algebra only (no measured number)."""

from __future__ import annotations

THEORY = {
    "Q1 theory 1": (
        "Each forward step scales the signal by $\\sqrt{\\alpha_t}$ and adds independent Gaussian noise, so $t$ "
        "steps compose into one Gaussian: $q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t}\\, x_0,\\ "
        "(1 - \\bar\\alpha_t) I)$. The mean factors multiply to $\\sqrt{\\bar\\alpha_t}$ and the noise variances "
        "telescope to $1 - \\bar\\alpha_t$, so training noises an image at a random $t$ in one draw."),
    "Q1 theory 2": (
        "The reverse conditional $q(x_{t-1} \\mid x_t)$ needs the unknown data distribution, but for small "
        "$\\beta_t$ it is close to a Gaussian, so a Gaussian reverse step $p_\\theta$ is the right family. "
        "Conditioned on the training image, $q(x_{t-1} \\mid x_t, x_0) = \\mathcal N(\\tilde\\mu_t, \\tilde\\beta_t)$ "
        "is exactly Gaussian in closed form, so it serves as the training target; written through the noise, "
        "predicting $\\epsilon$ gives the mean of DDPM's step."),
    "Q1 theory 3": (
        "The bound on $-\\log p_\\theta(x_0)$ splits into $L_T + \\sum_{t \\ge 2} L_{t-1} + L_0$. $L_T$, the KL "
        "from $q(x_T \\mid x_0)$ to $\\mathcal N(0, I)$, has no parameters and is tiny for this schedule, so it is "
        "dropped. Each $L_{t-1}$ is a KL between Gaussians, a weighted squared error between the true and the "
        "predicted noise; $L_{\\mathrm{simple}}$ keeps the squared error without the weight, and replaces the "
        "decoder term $L_0$ by its squared error at $t = 1$."),
    "Q1 theory 4": (
        "DDIM's family $q_\\sigma(x_{t-1} \\mid x_t, x_0)$ has the forward marginals $q(x_t \\mid x_0)$ for every "
        "$\\sigma_t$, so one network trained with $L_{\\mathrm{simple}}$ serves all of them. With "
        "$\\sigma_t^2 = \\tilde\\beta_t$, that is $\\eta = 1$, its step is DDPM's posterior step in mean and "
        "variance, also on a strided subsequence of steps; $\\eta = 0$ is the deterministic sampler. The course's "
        "DDPM default $\\sigma_t^2 = \\beta_t$ is slightly larger and is not a member."),
    "Q1 theory 5": (
        "ES-DDPM draws $x_0'$ from a cheap prior, noises it to a step $T' \\lt T$ in one shot and runs only the "
        "last $T'$ steps of DDPM. Its only error is the start, the law of $x_{T'}$ from the prior instead of from "
        "the data, and by the data processing inequality that error can only fall as $T'$ grows. A better prior "
        "allows a smaller $T'$, so fewer network calls."),
    "Q2 theory 1": (
        "Maximum likelihood for $p_\\theta = e^{-E_\\theta}/Z_\\theta$ needs $\\nabla_\\theta \\log Z_\\theta$, an "
        "expectation under the model itself, so every step needs the integral over the whole space or fresh MCMC "
        "samples. The score $\\nabla_x \\log p_\\theta = -\\nabla_x E_\\theta$ does not contain $Z_\\theta$, which "
        "does not depend on $x$, so a score model may be any vector field."),
    "Q2 theory 2": (
        "Score matching's objective contains the trace of the Jacobian of $s_\\theta$, which costs $D$ backward "
        "passes per point. Since $\\mathbb E[v^\\top A v] = \\operatorname{tr} A$ for any random $v$ with "
        "$\\mathbb E[v v^\\top] = I$, one random projection estimates the trace without bias with a single "
        "vector-Jacobian product: sliced score matching."),
    "Q2 theory 3": (
        "Noise makes the score defined and learnable everywhere: data near a low-dimensional set have no usable "
        "score, and where data are scarce the score is learned badly. NCSN's perturbation $x + \\sigma z$ keeps the "
        "signal and lets the variance grow (variance exploding); DDPM's shrinks the signal as it adds noise "
        "(variance preserving). The two are the same perturbation up to the scale $\\sqrt{\\bar\\alpha_t}$, and "
        "the noise DDPM's network predicts is minus $\\sigma_t$ times the score."),
    "Q2 theory 4": (
        "Following the score uphill only finds a mode. Langevin dynamics, "
        "$x \\leftarrow x + \\tfrac{\\epsilon}{2} s(x) + \\sqrt{\\epsilon}\\, z$, adds just enough noise that its "
        "stationary law is $p$ itself, and it needs only the score. A finite step leaves a bias of order "
        "$\\epsilon$."),
    "Q2 theory 5": (
        "Where $p$ is small the score is learned badly, and away from the boundary between modes the score does "
        "not depend on their weights, so plain Langevin dynamics keeps the share of starts each basin received. "
        "Annealing runs Langevin on $p_\\sigma$ for decreasing $\\sigma$: at large $\\sigma$ the modes merge into one "
        "bump whose score is learned everywhere and depends on the weights, so the points reach the modes in "
        "proportion to their mass."),
}
