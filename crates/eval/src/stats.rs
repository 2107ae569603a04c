//! Statistics for eval reports and comparisons: Wilson intervals, seeded bootstrap,
//! Welch's t-test with Student-t p-values, McNemar's test, percentiles.
//!
//! Special functions (log-gamma, regularized incomplete beta and gamma) are implemented
//! here after the classic Lanczos / continued-fraction formulations.

/// z for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A small deterministic PRNG (SplitMix64): same seed, same stream, on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Arithmetic mean (0 for an empty slice).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n − 1 denominator; 0 when n < 2).
pub fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Sample standard deviation (as Python's `statistics.stdev`; 0 when n < 2).
pub fn std_dev(xs: &[f64]) -> f64 {
    variance(xs).sqrt()
}

/// Wilson score interval for `k` successes out of `n` at normal quantile `z`.
/// `n = 0` gives `[0, 1]`.
pub fn wilson(k: u64, n: u64, z: f64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let center = (p + z2 / (2.0 * n_f)) / denom;
    let half = z / denom * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    [(center - half).max(0.0), (center + half).min(1.0)]
}

/// Percentile `p` in [0, 100] with linear interpolation between closest ranks
/// (NumPy's default, Python's `statistics.quantiles(method="inclusive")`).
/// Empty input gives 0.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    percentile_sorted(&s, p)
}

fn percentile_sorted(s: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0).clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (rank - lo as f64)
}

/// Percentile 95 % interval of the bootstrap distribution of the mean.
/// Empty input gives `[0, 0]`.
pub fn bootstrap_mean_ci(xs: &[f64], resamples: usize, seed: u64) -> [f64; 2] {
    if xs.is_empty() || resamples == 0 {
        return [0.0, 0.0];
    }
    let mut rng = SplitMix64::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| resample_mean(xs, &mut rng))
        .collect();
    means.sort_by(f64::total_cmp);
    [
        percentile_sorted(&means, 2.5),
        percentile_sorted(&means, 97.5),
    ]
}

fn resample_mean(xs: &[f64], rng: &mut SplitMix64) -> f64 {
    let mut sum = 0.0;
    for _ in 0..xs.len() {
        sum += xs[rng.below(xs.len())];
    }
    sum / xs.len() as f64
}

/// Percentile 95 % interval of `mean(a*) − mean(b*)` over independent resamples of
/// each side.
pub fn bootstrap_delta_ci(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> [f64; 2] {
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return [0.0, 0.0];
    }
    let mut rng = SplitMix64::new(seed);
    let mut deltas: Vec<f64> = (0..resamples)
        .map(|_| resample_mean(a, &mut rng) - resample_mean(b, &mut rng))
        .collect();
    deltas.sort_by(f64::total_cmp);
    [
        percentile_sorted(&deltas, 2.5),
        percentile_sorted(&deltas, 97.5),
    ]
}

/// Natural log of the gamma function (Lanczos, g = 7, n = 9), x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection formula.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-16;
    const TINY: f64 = 1e-300;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularized incomplete beta function I_x(a, b).
pub fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Two-sided p-value of Student's t with `df` degrees of freedom: P(|T| ≥ |t|).
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    if t.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    reg_inc_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// The t value with two-sided tail probability `alpha` (e.g. 0.05 → t₀.₉₇₅).
pub fn student_t_critical(alpha: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0e4_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_p(mid, df) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// t-interval of the mean at 95 %; n < 2 gives `[mean, mean]`.
pub fn t_interval_95(xs: &[f64]) -> [f64; 2] {
    let m = mean(xs);
    if xs.len() < 2 {
        return [m, m];
    }
    let se = std_dev(xs) / (xs.len() as f64).sqrt();
    let t = student_t_critical(0.05, (xs.len() - 1) as f64);
    [m - t * se, m + t * se]
}

/// Result of Welch's t-test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// t statistic (may be ±∞ when both variances are zero and the means differ).
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom (NaN when undefined).
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's unequal-variance t-test; `None` when a side has fewer than 2 samples.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, mb) = (mean(a), mean(b));
    let (va, vb) = (variance(a), variance(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    if sa + sb == 0.0 {
        return Some(if ma == mb {
            Welch {
                t: 0.0,
                df: na + nb - 2.0,
                p: 1.0,
            }
        } else {
            Welch {
                t: if ma > mb {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                },
                df: na + nb - 2.0,
                p: 0.0,
            }
        });
    }
    let t = (ma - mb) / (sa + sb).sqrt();
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    Some(Welch {
        t,
        df,
        p: student_t_two_sided_p(t, df),
    })
}

/// Regularized upper incomplete gamma Q(a, x).
pub fn reg_upper_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        // Series for P.
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - gln).exp()
    } else {
        // Continued fraction for Q (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (-x + a * x.ln() - gln).exp() * h
    }
}

/// Result of McNemar's test on discordant pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemar {
    /// Cases A passed and B failed.
    pub b: u64,
    /// Cases A failed and B passed.
    pub c: u64,
    /// Exact two-sided binomial p-value.
    pub p_exact: f64,
    /// χ² statistic with continuity correction (0 when b + c = 0).
    pub chi2: f64,
    /// p-value of `chi2` (χ², 1 df).
    pub p_chi2: f64,
}

impl McNemar {
    /// The p-value to report: exact when b + c < 25, else χ².
    pub fn p(&self) -> f64 {
        if self.b + self.c < 25 {
            self.p_exact
        } else {
            self.p_chi2
        }
    }

    /// Which method [`McNemar::p`] used.
    pub fn method(&self) -> &'static str {
        if self.b + self.c < 25 {
            "exact"
        } else {
            "chi2"
        }
    }
}

/// McNemar's test for `b` (A pass, B fail) and `c` (A fail, B pass) discordant pairs.
pub fn mcnemar(b: u64, c: u64) -> McNemar {
    let n = b + c;
    if n == 0 {
        return McNemar {
            b,
            c,
            p_exact: 1.0,
            chi2: 0.0,
            p_chi2: 1.0,
        };
    }
    let k = b.min(c);
    let nf = n as f64;
    let ln_half_n = nf * 0.5_f64.ln();
    let mut tail = 0.0;
    for i in 0..=k {
        let fi = i as f64;
        let ln_c = ln_gamma(nf + 1.0) - ln_gamma(fi + 1.0) - ln_gamma(nf - fi + 1.0);
        tail += (ln_c + ln_half_n).exp();
    }
    let p_exact = (2.0 * tail).min(1.0);
    let diff = (b as f64 - c as f64).abs() - 1.0;
    let chi2 = if diff > 0.0 { diff * diff / nf } else { 0.0 };
    let p_chi2 = reg_upper_gamma(0.5, chi2 / 2.0);
    McNemar {
        b,
        c,
        p_exact,
        chi2,
        p_chi2,
    }
}
