//! Layer-0 `alc.math` (lua-api.md §2.10): seeded generators with bit parity with Rust
//! `rand` 0.9 `StdRng::seed_from_u64`, and the required statistics.
//!
//! Each function returns `(value, nil)` or `(nil, message)`; the Lua wrappers in
//! `lua/stdlib.lua` raise the message with `error(msg, 0)`.

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{fail, lua_type_name, Reply};
use crate::host::lua_number_string;

/// The generator behind `alc.math.rng_create`.
pub struct MathRng(StdRng);

impl UserData for MathRng {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("alc.math.rng"));
    }
}

/// Lua's rendering of a number value (for messages).
fn show(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => lua_number_string(*n),
        other => lua_type_name(other).to_string(),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) if n.fract() == 0.0 && *n >= -(2f64.powi(63)) && *n < 2f64.powi(63) => {
            Some(*n as i64)
        }
        _ => None,
    }
}

/// Reads a non-empty array of finite numbers; `Err` carries the message.
fn numbers(name: &str, v: &Value) -> mlua::Result<Result<Vec<f64>, String>> {
    let empty = || Err(format!("alc.math.{name}: expected non-empty array"));
    let Value::Table(t) = v else {
        return Ok(empty());
    };
    let n = t.raw_len();
    if n == 0 {
        return Ok(empty());
    }
    let mut xs = Vec::with_capacity(n);
    for i in 1..=n {
        let e: Value = t.raw_get(i)?;
        match as_f64(&e) {
            Some(x) if x.is_finite() => xs.push(x),
            Some(_) => {
                return Ok(Err(format!(
                    "alc.math.{name}: element at index {i} is NaN or infinite"
                )))
            }
            None => {
                return Ok(Err(format!(
                    "alc.math.{name}: element at index {i} is not a number (got {})",
                    lua_type_name(&e)
                )))
            }
        }
    }
    Ok(Ok(xs))
}

/// Percentile with linear interpolation; `p` in [0, 100], `xs` non-empty.
pub fn percentile_of(xs: &[f64], p: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let r = p / 100.0 * (s.len() - 1) as f64;
    let lo = r.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let frac = r - lo as f64;
    s[lo] + (s[hi] - s[lo]) * frac
}

/// Arithmetic mean.
pub fn mean_of(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n − 1); 0 for a single element.
pub fn variance_of(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean_of(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

// Coefficients of Wichura's AS 241 (PPND16), highest degree last.
#[allow(clippy::excessive_precision)]
const AS241_A: [f64; 8] = [
    3.3871328727963666080e0,
    1.3314166789178437745e+2,
    1.9715909503065514427e+3,
    1.3731693765509461125e+4,
    4.5921953931549871457e+4,
    6.7265770927008700853e+4,
    3.3430575583588128105e+4,
    2.5090809287301226727e+3,
];
#[allow(clippy::excessive_precision)]
const AS241_B: [f64; 8] = [
    1.0,
    4.2313330701600911252e+1,
    6.8718700749205790830e+2,
    5.3941960214247511077e+3,
    2.1213794301586595867e+4,
    3.9307895800092710610e+4,
    2.8729085735721942674e+4,
    5.2264952788528545610e+3,
];
#[allow(clippy::excessive_precision)]
const AS241_C: [f64; 8] = [
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
];
#[allow(clippy::excessive_precision)]
const AS241_D: [f64; 8] = [
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
];
#[allow(clippy::excessive_precision)]
const AS241_E: [f64; 8] = [
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
];
#[allow(clippy::excessive_precision)]
const AS241_F: [f64; 8] = [
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
];

/// Evaluates the polynomial with coefficients `c` (constant first) at `x` (Horner).
fn poly(c: &[f64; 8], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, k| acc * x + k)
}

/// Standard normal quantile (Wichura, AS 241, PPND16; relative accuracy about 1e-16).
pub fn normal_ppf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&AS241_A, r) / poly(&AS241_B, r);
    }
    let r = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        let r = r - 1.6;
        poly(&AS241_C, r) / poly(&AS241_D, r)
    } else {
        let r = r - 5.0;
        poly(&AS241_E, r) / poly(&AS241_F, r)
    };
    if q < 0.0 {
        -val
    } else {
        val
    }
}

/// Wilson score interval `(lower, upper, center)`.
pub fn wilson(successes: f64, total: f64, confidence: f64) -> (f64, f64, f64) {
    let z = normal_ppf(1.0 - (1.0 - confidence) / 2.0);
    if !z.is_finite() {
        return (0.0, 1.0, 0.5);
    }
    let p = successes / total;
    let z2 = z * z;
    let denom = 1.0 + z2 / total;
    let center = (p + z2 / (2.0 * total)) / denom;
    let half = z * (p * (1.0 - p) / total + z2 / (4.0 * total * total)).sqrt() / denom;
    let lower = if successes <= 0.0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let upper = if successes >= total {
        1.0
    } else {
        (center + half).min(1.0)
    };
    (lower, upper, center)
}

fn num(v: f64) -> Value {
    Value::Number(v)
}

fn rng_arg<'a>(name: &str, v: &'a Value) -> Result<&'a AnyUserData, String> {
    match v {
        Value::UserData(ud) if ud.is::<MathRng>() => Ok(ud),
        other => Err(format!(
            "alc.math.{name}: bad argument #1 'rng' (alc.math.rng expected, got {})",
            lua_type_name(other)
        )),
    }
}

/// Registers the raw `alc.math` functions into `raw` (keys `math_<name>`).
pub fn register(lua: &Lua, raw: &Table) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set(
        "rng_create",
        lua.create_function(|lua, seed: Value| -> mlua::Result<Reply> {
            match as_int(&seed) {
                Some(s) if s >= 0 => {
                    let ud = lua.create_userdata(MathRng(StdRng::seed_from_u64(s as u64)))?;
                    Ok((Value::UserData(ud), None))
                }
                _ => fail(format!(
                    "alc.math.rng_create: seed must be a non-negative integer, got {}",
                    show(&seed)
                )),
            }
        })?,
    )?;
    m.raw_set(
        "rng_float",
        lua.create_function(|_, rng: Value| -> mlua::Result<Reply> {
            let ud = match rng_arg("rng_float", &rng) {
                Ok(u) => u,
                Err(e) => return fail(e),
            };
            let x: f64 = ud.borrow_mut::<MathRng>()?.0.random();
            Ok((num(x), None))
        })?,
    )?;
    m.raw_set(
        "rng_int",
        lua.create_function(
            |_, (rng, lo, hi): (Value, Value, Value)| -> mlua::Result<Reply> {
                const F: &str = "alc.math.rng_int";
                let ud = match rng_arg("rng_int", &rng) {
                    Ok(u) => u,
                    Err(e) => return fail(e),
                };
                let (Some(a), Some(b)) = (as_int(&lo), as_int(&hi)) else {
                    let (n, p, v) = if as_int(&lo).is_none() {
                        (2, "min", &lo)
                    } else {
                        (3, "max", &hi)
                    };
                    return fail(format!(
                        "{F}: bad argument #{n} '{p}' (integer expected, got {})",
                        show(v)
                    ));
                };
                if a > b {
                    return fail(format!("{F}: min ({a}) must be <= max ({b})"));
                }
                let x: i64 = ud.borrow_mut::<MathRng>()?.0.random_range(a..=b);
                Ok((Value::Integer(x), None))
            },
        )?,
    )?;
    for name in ["median", "mean", "variance", "stddev"] {
        m.raw_set(
            name,
            lua.create_function(move |_, xs: Value| -> mlua::Result<Reply> {
                let xs = match numbers(name, &xs)? {
                    Ok(xs) => xs,
                    Err(e) => return fail(e),
                };
                let v = match name {
                    "median" => percentile_of(&xs, 50.0),
                    "mean" => mean_of(&xs),
                    "variance" => variance_of(&xs),
                    _ => variance_of(&xs).sqrt(),
                };
                Ok((num(v), None))
            })?,
        )?;
    }
    m.raw_set(
        "percentile",
        lua.create_function(|_, (xs, p): (Value, Value)| -> mlua::Result<Reply> {
            const F: &str = "alc.math.percentile";
            let xs = match numbers("percentile", &xs)? {
                Ok(xs) => xs,
                Err(e) => return fail(e),
            };
            match as_f64(&p) {
                Some(pv) if (0.0..=100.0).contains(&pv) => Ok((num(percentile_of(&xs, pv)), None)),
                Some(_) => fail(format!("{F}: p must be in [0, 100], got {}", show(&p))),
                None => fail(format!(
                    "{F}: bad argument #2 'p' (number expected, got {})",
                    lua_type_name(&p)
                )),
            }
        })?,
    )?;
    m.raw_set(
        "wilson_ci",
        lua.create_function(
            |lua, (s, n, c): (Value, Value, Value)| -> mlua::Result<Reply> {
                const F: &str = "alc.math.wilson_ci";
                let args = [("successes", &s), ("total", &n), ("confidence", &c)];
                let mut vals = [0.0; 3];
                for (i, (pname, v)) in args.iter().enumerate() {
                    match as_f64(v) {
                        Some(x) if x.is_finite() => vals[i] = x,
                        _ => {
                            return fail(format!(
                                "{F}: bad argument #{} '{pname}' (finite number expected, got {})",
                                i + 1,
                                show(v)
                            ))
                        }
                    }
                }
                let [s, n, c] = vals;
                if n <= 0.0 {
                    return fail(format!("{F}: total must be > 0"));
                }
                if !(0.0..=1.0).contains(&c) {
                    return fail(format!(
                        "{F}: confidence must be in [0, 1], got {}",
                        lua_number_string(c)
                    ));
                }
                if !(0.0..=n).contains(&s) {
                    return fail(format!("{F}: successes must be in [0, total]"));
                }
                let (lower, upper, center) = wilson(s, n, c);
                let t = lua.create_table()?;
                t.raw_set("lower", lower)?;
                t.raw_set("upper", upper)?;
                t.raw_set("center", center)?;
                Ok((Value::Table(t), None))
            },
        )?,
    )?;
    raw.raw_set("math", m)?;
    Ok(())
}
