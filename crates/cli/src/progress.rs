//! Progress display of `alc run` on stderr (interfaces.md §4.2).
//!
//! When stderr is a terminal: a spinner with round, LLM calls done / in flight, tokens and
//! elapsed time, turned into a bar once `alc.progress` gives a total. Otherwise one plain
//! line per LLM call at `-v`, nothing by default. `--quiet` and `--no-progress` turn it off.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alc_core::QueryId;
use alc_llm::{CallFailure, Completion, RetryEvent};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Bar,
    Lines,
    Off,
}

#[derive(Default)]
struct State {
    round: u64,
    done: u64,
    in_flight: u64,
    tokens: u64,
    step: u64,
    total: u64,
    message: String,
    bar_style: bool,
}

struct Inner {
    mode: Mode,
    verbose: u8,
    state: Mutex<State>,
    bar: Option<ProgressBar>,
}

/// Shared progress handle (cheap to clone, usable from any thread).
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

const SPINNER: &str = "{spinner} {wide_msg} {elapsed}";
const BAR: &str = "{spinner} [{bar:20}] {pos}/{len} {wide_msg} {elapsed}";

impl Progress {
    /// Chooses the display from the flags and whether stderr is a terminal.
    pub fn new(quiet: bool, no_progress: bool, verbose: u8) -> Progress {
        let mode = if quiet || no_progress {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else if verbose > 0 {
            Mode::Lines
        } else {
            Mode::Off
        };
        let bar = (mode == Mode::Bar).then(|| {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(SPINNER) {
                pb.set_style(style);
            }
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        let p = Progress {
            inner: Arc::new(Inner {
                mode,
                verbose,
                state: Mutex::new(State::default()),
                bar,
            }),
        };
        p.redraw();
        p
    }

    /// Whether anything is displayed.
    pub fn enabled(&self) -> bool {
        self.inner.mode != Mode::Off
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn redraw(&self) {
        let Some(bar) = &self.inner.bar else {
            return;
        };
        let mut st = self.state();
        let mut msg = format!(
            "round {} · LLM {} done, {} in flight · {} tok",
            st.round, st.done, st.in_flight, st.tokens
        );
        if !st.message.is_empty() {
            msg.push_str(" · ");
            msg.push_str(&st.message);
        }
        if st.total > 0 {
            if !st.bar_style {
                st.bar_style = true;
                if let Ok(style) = ProgressStyle::with_template(BAR) {
                    bar.set_style(style.progress_chars("=> "));
                }
            }
            bar.set_length(st.total);
            bar.set_position(st.step.min(st.total));
        }
        bar.set_message(msg);
    }

    /// A line on stderr that does not tear the bar.
    pub fn line(&self, text: &str) {
        match &self.inner.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Runs `f` with the bar hidden (terminal prompts).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.inner.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// A new pause was issued.
    pub fn round(&self, round: u64) {
        self.state().round = round;
        self.redraw();
    }

    /// `n` provider calls started.
    pub fn calls_started(&self, n: usize) {
        self.state().in_flight += n as u64;
        self.redraw();
    }

    /// One provider call finished.
    pub fn call_finished(
        &self,
        query_id: &QueryId,
        round: u64,
        outcome: &Result<Completion, CallFailure>,
    ) {
        {
            let mut st = self.state();
            st.in_flight = st.in_flight.saturating_sub(1);
            st.done += 1;
            if let Ok(c) = outcome {
                st.tokens +=
                    c.usage.prompt_tokens.unwrap_or(0) + c.usage.completion_tokens.unwrap_or(0);
            }
        }
        self.redraw();
        if self.inner.mode == Mode::Off || self.inner.verbose == 0 {
            return;
        }
        let text = match outcome {
            Ok(c) => format!(
                "llm {query_id} round {round}: {}:{} {}+{} tokens ({}) {} ms, {} attempt(s)",
                c.provider,
                c.model,
                c.usage.prompt_tokens.unwrap_or(0),
                c.usage.completion_tokens.unwrap_or(0),
                serde_json::to_value(c.usage.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                c.latency_ms,
                c.attempts
            ),
            Err(f) => format!(
                "llm {query_id} round {round}: failed after {} attempt(s): {}",
                f.attempts, f.error
            ),
        };
        self.line(&text);
    }

    /// `alc.progress(step, total, message)`.
    pub fn step(&self, step: u64, total: u64, message: &str) {
        {
            let mut st = self.state();
            st.step = step;
            st.total = total;
            st.message = message.to_string();
        }
        self.redraw();
        if self.inner.mode == Mode::Lines && self.inner.verbose > 0 {
            if total > 0 {
                self.line(&format!("progress: step {step}/{total}: {message}"));
            } else {
                self.line(&format!("progress: step {step}: {message}"));
            }
        }
    }

    /// A provider retry is about to wait.
    pub fn retry(&self, ev: &RetryEvent) {
        if self.inner.mode != Mode::Off {
            self.line(&format!("retry: {}", ev.progress_message()));
        }
    }

    /// Clears the display (before the result is printed, or on interruption).
    pub fn finish(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.finish_and_clear();
        }
    }
}
