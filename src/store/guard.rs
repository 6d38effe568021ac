//! Every call into redb goes through [`guarded`]: a damaged page that redb meets while reading
//! may panic inside it instead of returning an error. The guard turns such a panic into a
//! [`StoreError::Panicked`], so the caller logs it and answers the request that needed the data
//! with an error (payload_by_number: code 3) instead of losing its task or the node.
//!
//! The integrity check at open ([`super::open`]) catches damage that is already there when the
//! node starts; this guard is for damage that appears while it runs (a disk going bad, a file
//! edited under the node). A caught panic is not printed by the default panic hook (it would look
//! like a crash to an operator); its message goes into the error instead.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::StoreError;

thread_local! {
    /// True while this thread runs inside [`guarded`].
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The message of the last panic caught on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Chains a panic hook in front of the current one: panics inside [`guarded`] are recorded for
/// the error instead of printed; every other panic goes to the previous hook unchanged.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{message}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic inside it into [`StoreError::Panicked`].
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    install_hook();
    // Nested calls (a store method calling another) keep the outer flag.
    let outer = GUARDED.with(|g| g.replace(true));
    // AssertUnwindSafe: after a panic the only state left behind is redb's, and redb reports a
    // half-finished transaction or a poisoned lock as an error (or another caught panic) on the
    // next call; nothing of ours is observed half-updated.
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.unwrap_or_else(|_| {
        let message = CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(StoreError::Panicked { message })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let r: Result<(), StoreError> = guarded(|| panic!("page checksum"));
        let text = r.unwrap_err().to_string();
        assert!(text.contains("damaged"), "{text}");
        assert!(text.contains("page checksum"), "{text}");
    }

    #[test]
    fn values_and_errors_pass_through() {
        assert_eq!(guarded(|| Ok(7)).unwrap(), 7);
        let r: Result<(), StoreError> =
            guarded(|| Err(StoreError::Corrupt(super::super::Record::Format)));
        assert!(matches!(r, Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn nested_guards_restore_the_outer_flag() {
        let r: Result<(), StoreError> = guarded(|| {
            let inner: Result<(), StoreError> = guarded(|| panic!("inner"));
            assert!(inner.is_err());
            assert!(GUARDED.with(Cell::get));
            Ok(())
        });
        assert!(r.is_ok());
        assert!(!GUARDED.with(Cell::get));
    }
}
