//! What the solver's tests with fake ports share (the fakes themselves are in
//! `rbuild_test_support::fakes`): solving a graph on a runtime of its own.

use std::sync::{Arc, Mutex};

use rbuild_graph::Graph;
use rbuild_solver::events::Event;
use rbuild_solver::{SolveError, Solver, VertexResult};

/// Solves `graph` with `solver` on a new multi-threaded runtime; returns the result and every
/// event, in order.
pub fn solve(solver: Solver, graph: Graph) -> (Result<VertexResult, SolveError>, Vec<Event>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: rbuild_solver::EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |e| events.lock().unwrap().push(e))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(Arc::new(solver).solve(Arc::new(graph), sink));
    let events = events.lock().unwrap().clone();
    (result, events)
}
