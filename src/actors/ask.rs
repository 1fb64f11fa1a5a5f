//! Asking an actor: send it a message carrying a reply port, then await the answer, bounded.
//! Every request/reply between actors goes through here, so "the actor is gone" and "no answer
//! in time" are told apart the same way everywhere and each caller maps them to its own code.

use kafka_protocol::error::ResponseError;
use ractor::ActorRef;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why an ask got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// Not delivered (the actor stopped), or the actor dropped the reply port unanswered.
    #[error("the actor is gone or dropped the request")]
    Gone,
    /// No answer within the bound.
    #[error("no answer in time")]
    TimedOut,
}

impl AskError {
    /// The Kafka code for this failure: `gone` when the actor is gone, REQUEST_TIMED_OUT when
    /// it did not answer in time.
    pub fn code(self, gone: ResponseError) -> ResponseError {
        match self {
            AskError::Gone => gone,
            AskError::TimedOut => ResponseError::RequestTimedOut,
        }
    }
}

/// A delivered request whose answer is pending.
#[must_use = "an ask's answer is awaited with within() or until()"]
pub struct Asked<R>(oneshot::Receiver<R>);

/// Sends `actor` the message `make` builds around a reply port; `Gone` if it is not delivered.
pub fn send_ask<M, R>(actor: &ActorRef<M>, make: impl FnOnce(oneshot::Sender<R>) -> M) -> Result<Asked<R>, AskError>
where
    M: ractor::Message,
{
    let (tx, rx) = oneshot::channel();
    actor.send_message(make(tx)).map_err(|_| AskError::Gone)?;
    Ok(Asked(rx))
}

impl<R> Asked<R> {
    /// The answer, waited for at most `timeout` (`None`: as long as the actor keeps the port).
    pub async fn within(self, timeout: Option<Duration>) -> Result<R, AskError> {
        match timeout {
            Some(t) => match tokio::time::timeout(t, self.0).await {
                Ok(answer) => answer.map_err(|_| AskError::Gone),
                Err(_) => Err(AskError::TimedOut),
            },
            None => self.0.await.map_err(|_| AskError::Gone),
        }
    }

    /// The answer, waited for until `deadline`.
    pub async fn until(self, deadline: tokio::time::Instant) -> Result<R, AskError> {
        match tokio::time::timeout_at(deadline, self.0).await {
            Ok(answer) => answer.map_err(|_| AskError::Gone),
            Err(_) => Err(AskError::TimedOut),
        }
    }
}

/// Sends and awaits in one: `send_ask(actor, make)?.within(timeout)`.
pub async fn ask<M, R>(
    actor: &ActorRef<M>,
    make: impl FnOnce(oneshot::Sender<R>) -> M,
    timeout: Option<Duration>,
) -> Result<R, AskError>
where
    M: ractor::Message,
{
    send_ask(actor, make)?.within(timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ractor::{Actor, ActorProcessingErr};

    struct Echo;
    enum EchoMsg {
        Answer(u32, oneshot::Sender<u32>),
        Drop(oneshot::Sender<u32>),
        Ignore(#[allow(dead_code)] oneshot::Sender<u32>),
    }

    impl Actor for Echo {
        type Msg = EchoMsg;
        type State = Vec<oneshot::Sender<u32>>;
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<EchoMsg>, _: ()) -> Result<Self::State, ActorProcessingErr> {
            Ok(Vec::new())
        }
        async fn handle(
            &self,
            _: ActorRef<EchoMsg>,
            msg: EchoMsg,
            kept: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                EchoMsg::Answer(n, reply) => {
                    let _ = reply.send(n);
                }
                EchoMsg::Drop(reply) => drop(reply),
                EchoMsg::Ignore(reply) => kept.push(reply),
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn answers_drops_silence_and_stopped_actors_are_told_apart() {
        let (echo, handle) = Actor::spawn(None, Echo, ()).await.unwrap();
        let short = Some(Duration::from_millis(50));
        assert_eq!(ask(&echo, |r| EchoMsg::Answer(7, r), short).await, Ok(7));
        assert_eq!(ask(&echo, EchoMsg::Drop, short).await, Err(AskError::Gone));
        assert_eq!(ask(&echo, EchoMsg::Ignore, short).await, Err(AskError::TimedOut));
        echo.stop(None);
        handle.await.unwrap();
        assert!(matches!(send_ask(&echo, EchoMsg::Drop), Err(AskError::Gone)));
        assert_eq!(
            AskError::TimedOut.code(ResponseError::NotCoordinator),
            ResponseError::RequestTimedOut
        );
    }
}
