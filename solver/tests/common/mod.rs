//! What the solver's tests with fake ports share (the fakes themselves are in
//! `rbuild_test_support::fakes`): solving a graph on a runtime of its own.

use std::sync::{Arc, Mutex};

use rbuild_graph::Graph;
use rbuild_solver::events::Event;
use rbuild_solver::{SolveError, Solved, Solver, VertexResult};

/// Solves `graph` with `solver` on a new multi-threaded runtime; returns the result and every
/// event, in order.
#[allow(dead_code)] // not every test binary that shares this module asks
pub fn solve(solver: Solver, graph: Graph) -> (Result<VertexResult, SolveError>, Vec<Event>) {
    let (result, events) = solve_steps(solver, graph);
    (result.map(|s| s.target), events)
}

/// [`solve`], with every solved step in the result ([`Solver::solve_steps`]).
pub fn solve_steps(solver: Solver, graph: Graph) -> (Result<Solved, SolveError>, Vec<Event>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: rbuild_solver::EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |e| events.lock().unwrap().push(e))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(Arc::new(solver).solve_steps(Arc::new(graph), sink));
    let events = events.lock().unwrap().clone();
    (result, events)
}

/// The names of the steps shown as CACHED, in order.
#[allow(dead_code)] // not every test binary that shares this module asks
pub fn cached_names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Cached { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}
