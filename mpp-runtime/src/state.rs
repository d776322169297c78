//! Application state handed to preconditions (a database pool, a client, …),
//! keyed by type, so checks written once run under any framework.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A map from type to one shared value of that type.
///
/// ```
/// use mpp_runtime::State;
/// struct Db(&'static str);
/// let mut state = State::default();
/// state.insert(Db("postgres://…"));
/// assert_eq!(state.get::<Db>().unwrap().0, "postgres://…");
/// assert!(state.get::<String>().is_none());
/// ```
#[derive(Default, Clone)]
pub struct State {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl State {
    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "State({} values)", self.values.len())
    }
}
