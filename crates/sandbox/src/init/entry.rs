//! [`init_main`]: the entry point of the re-executed init program. Run as
//! `<init_exe> __rbuild-sandbox-init zygote` it serves as the zygote (`init::zygote`);
//! otherwise it is one run's init started by hand (`init::start`).

use crate::init::rootless;
use crate::init::start::init_process;
use crate::init::zygote;
use crate::shared::zygote_protocol::ZYGOTE_ARG;

/// Entry point of the re-executed init (`argv[1]` ==
/// [`INIT_ARG`](crate::shared::zygote_protocol::INIT_ARG)). Never returns.
pub fn init_main() -> ! {
    // The init's own view of its privileges, taken before anything changes user.
    rootless::privileges();
    if std::env::args_os().nth(2).is_some_and(|a| a == ZYGOTE_ARG) {
        zygote::serve();
    }
    init_process()
}
