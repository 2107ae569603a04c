//! Statistics checked against values computed independently by Python 3
//! (`statistics`, `math`, closed forms, numeric integration of the t density).

use alc_eval::stats;

/// Runs `python3 -c CODE` and parses whitespace-separated floats from stdout.
fn py(code: &str) -> Vec<f64> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .output()
        .expect("python3 is available");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse::<f64>().unwrap_or_else(|_| panic!("float: {t}")))
        .collect()
}

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b} (tol {tol})");
}

const A: [f64; 8] = [0.9, 0.75, 1.0, 0.6, 0.85, 0.95, 0.7, 0.8];
const B: [f64; 10] = [0.5, 0.65, 0.4, 0.7, 0.55, 0.3, 0.6, 0.45, 0.8, 0.5];

#[test]
fn mean_std_match_python_statistics() {
    let v = py(&format!(
        "import statistics as s; a={A:?}; print(s.mean(a), s.stdev(a), s.variance(a))"
    ));
    close(stats::mean(&A), v[0], 1e-12);
    close(stats::std_dev(&A), v[1], 1e-12);
    close(stats::variance(&A), v[2], 1e-12);
    assert_eq!(stats::std_dev(&[0.5]), 0.0);
}

#[test]
fn wilson_matches_closed_form() {
    for (k, n) in [(4u64, 5u64), (0, 10), (10, 10), (17, 20), (37, 50)] {
        let v = py(&format!(
            "import math
from statistics import NormalDist
z=NormalDist().inv_cdf(0.975); k={k}; n={n}; p=k/n
c=(p+z*z/(2*n))/(1+z*z/n); h=z/(1+z*z/n)*math.sqrt(p*(1-p)/n+z*z/(4*n*n))
print(max(0.0,c-h), min(1.0,c+h))"
        ));
        let w = stats::wilson(k, n, stats::Z_95);
        close(w[0], v[0], 1e-12);
        close(w[1], v[1], 1e-12);
    }
}

#[test]
fn percentiles_match_python_inclusive_quantiles() {
    let xs = [
        120.0, 80.0, 300.0, 95.0, 150.0, 110.0, 99.0, 2000.0, 130.0, 101.0, 87.0,
    ];
    let v = py(&format!(
        "import statistics as s; q=s.quantiles({xs:?}, n=100, method='inclusive'); print(q[49], q[89], q[94], q[98])"
    ));
    close(stats::percentile(&xs, 50.0), v[0], 1e-9);
    close(stats::percentile(&xs, 90.0), v[1], 1e-9);
    close(stats::percentile(&xs, 95.0), v[2], 1e-9);
    close(stats::percentile(&xs, 99.0), v[3], 1e-9);
}

/// t, df in closed form; the two-sided p by Simpson integration of the Student-t
/// density in Python (independent of the incomplete-beta implementation).
#[test]
fn welch_matches_independent_computation() {
    let v = py(&format!(
        "import statistics as s, math
a={A:?}; b={B:?}
ma,mb=s.mean(a),s.mean(b); va,vb=s.variance(a)/len(a),s.variance(b)/len(b)
t=(ma-mb)/math.sqrt(va+vb); df=(va+vb)**2/(va*va/(len(a)-1)+vb*vb/(len(b)-1))
pdf=lambda x: math.exp(math.lgamma((df+1)/2)-math.lgamma(df/2))/math.sqrt(df*math.pi)*(1+x*x/df)**(-(df+1)/2)
N=200000; h=abs(t)/N
acc=pdf(0)+pdf(abs(t))+sum((4 if i%2 else 2)*pdf(i*h) for i in range(1,N))
print(t, df, 1-2*acc*h/3)"
    ));
    let w = stats::welch(&A, &B).expect("enough samples");
    close(w.t, v[0], 1e-9);
    close(w.df, v[1], 1e-9);
    close(w.p, v[2], 1e-6);
}

#[test]
fn student_t_textbook_values() {
    // Two-sided p for t = 2.228, df = 10 is 0.05 (t-table); t = 1.96, df → ∞ → 0.05.
    close(
        stats::student_t_two_sided_p(2.228_138_851_986_274, 10.0),
        0.05,
        1e-9,
    );
    close(
        stats::student_t_two_sided_p(1.959_963_984_540_054, 1e9),
        0.05,
        1e-6,
    );
    // df = 1 is Cauchy: p = 1 − 2·atan(t)/π.
    let t = 3.0_f64;
    close(
        stats::student_t_two_sided_p(t, 1.0),
        1.0 - 2.0 * t.atan() / std::f64::consts::PI,
        1e-12,
    );
    close(
        stats::student_t_critical(0.05, 10.0),
        2.228_138_851_986_274,
        1e-9,
    );
}

#[test]
fn welch_edge_cases() {
    assert!(stats::welch(&[1.0], &[0.0, 1.0]).is_none());
    let w = stats::welch(&[1.0, 1.0], &[1.0, 1.0]).unwrap();
    assert_eq!((w.t, w.p), (0.0, 1.0));
    let w = stats::welch(&[1.0, 1.0], &[0.0, 0.0]).unwrap();
    assert!(w.t.is_infinite() && w.p == 0.0);
}

#[test]
fn mcnemar_matches_binomial_and_chi_square() {
    for (b, c) in [(7u64, 1u64), (3, 3), (0, 5), (30, 12)] {
        let v = py(&format!(
            "import math
b,c={b},{c}; n=b+c; k=min(b,c)
pe=min(1.0, 2*sum(math.comb(n,i) for i in range(k+1))/2**n)
x=max(0,abs(b-c)-1)**2/n
print(pe, x, math.erfc(math.sqrt(x/2)))"
        ));
        let m = stats::mcnemar(b, c);
        close(m.p_exact, v[0], 1e-12);
        close(m.chi2, v[1], 1e-12);
        close(m.p_chi2, v[2], 1e-9);
    }
    assert_eq!(stats::mcnemar(0, 0).p(), 1.0);
}

#[test]
fn bootstrap_is_deterministic_for_a_seed() {
    let a = stats::bootstrap_mean_ci(&A, 5000, 42);
    let b = stats::bootstrap_mean_ci(&A, 5000, 42);
    assert_eq!(a, b);
    let xs: Vec<f64> = (0..40).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
    let c1 = stats::bootstrap_mean_ci(&xs, 999, 42);
    assert_eq!(c1, stats::bootstrap_mean_ci(&xs, 999, 42));
    assert_ne!(c1, stats::bootstrap_mean_ci(&xs, 999, 43));
    let m = stats::mean(&A);
    assert!(a[0] < m && m < a[1], "{a:?} brackets {m}");
    let d1 = stats::bootstrap_delta_ci(&A, &B, 10_000, 7);
    let d2 = stats::bootstrap_delta_ci(&A, &B, 10_000, 7);
    assert_eq!(d1, d2);
    let delta = stats::mean(&A) - stats::mean(&B);
    assert!(d1[0] < delta && delta < d1[1]);
    // Constant data: the interval collapses to the value.
    assert_eq!(stats::bootstrap_mean_ci(&[0.5; 6], 100, 1), [0.5, 0.5]);
}
