use std::time::Duration;

use asyncrt::{fallible, sleep, Error, LocalExecutor, Scope, ScopeOptions};

fn main() -> Result<(), Error> {
    let ex = LocalExecutor::new()?;

    // A Rust future as an asyncrt task, awaiting asyncrt's timer.
    let task = ex.spawn(fallible(async {
        sleep(Duration::from_millis(1)).await?;
        Ok::<_, Error>(6 * 7)
    }))?;
    println!("answer: {}", ex.block_on(task)??);

    // A scope: the child that fails cancels its sibling, and the join
    // reports the failure with its message.
    let (joined, sibling) = ex.block_on(async {
        let scope = Scope::open(&ScopeOptions::default())?;
        let sibling = scope.spawn(sleep(Duration::from_secs(60)))?;
        scope.spawn(fallible(async { Err::<(), _>(Error::new("boom")) }))?;
        Ok::<_, Error>((scope.join().await, sibling.await))
    })??;
    println!("scope: {}", joined.unwrap_err());
    println!("sibling cancelled: {}", sibling.unwrap_err().is_cancelled());
    Ok(())
}
