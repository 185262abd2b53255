//! A small blocking client of the control API, used by the CLI and the tests.
//!
//! It is blocking on purpose: the CLI makes one or two calls and exits, and starting an
//! async runtime would cost more than the call itself.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::{ApiError, Call, EventLine, People, Request, Response, PROTOCOL_VERSION};

/// Problems talking to the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("could not reach hearthd at {socket}: {source}")]
    Connect {
        /// The socket path.
        socket: String,
        /// The IO error.
        source: io::Error,
    },
    /// The connection broke mid-call.
    #[error("the connection to hearthd broke ({0}); check `hearth daemon status`")]
    Io(#[from] io::Error),
    /// The daemon answered with something this client does not understand.
    #[error(
        "hearthd sent an answer this hearth does not understand ({0}); are both the same version?"
    )]
    Protocol(String),
    /// The daemon refused the request.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects to the control socket.
    pub fn connect(socket: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
            socket: socket.display().to_string(),
            source,
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    /// Sets how long a call may wait for its answer.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(timeout)
    }

    /// Sends one request and waits for its result.
    pub fn call(&mut self, call: impl Into<Call>) -> Result<serde_json::Value, ClientError> {
        self.exchange(call.into(), false).map(|(value, _)| value)
    }

    /// Sends one request and waits for its result, with who is who beside it: the
    /// daemon adds them to the same answer, so naming people costs no second call.
    pub fn call_with_people(
        &mut self,
        call: impl Into<Call>,
    ) -> Result<(serde_json::Value, People), ClientError> {
        let (value, people) = self.exchange(call.into(), true)?;
        let people = people.ok_or_else(|| {
            ClientError::Protocol("the answer left out the people it was asked for".into())
        })?;
        Ok((value, people))
    }

    /// Sends one request and waits for its result, typed: for answers whose shape the
    /// protocol defines, such as [`crate::Status`].
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        call: impl Into<Call>,
    ) -> Result<T, ClientError> {
        let value = self.call(call)?;
        serde_json::from_value(value).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn exchange(
        &mut self,
        call: Call,
        with_people: bool,
    ) -> Result<(serde_json::Value, Option<People>), ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request {
            v: PROTOCOL_VERSION,
            id,
            call,
            with_people,
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        loop {
            let line = self.read_line()?;
            let response: Response =
                serde_json::from_str(&line).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if response.id != id {
                continue;
            }
            return match (response.ok, response.error) {
                (_, Some(error)) => Err(ClientError::Api(error)),
                (Some(value), None) => Ok((value, response.people)),
                (None, None) => Ok((serde_json::Value::Null, response.people)),
            };
        }
    }

    fn read_line(&mut self) -> Result<String, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "hearthd closed the connection",
            )));
        }
        Ok(line)
    }

    /// Subscribes, then yields events as they arrive.
    pub fn subscribe(mut self) -> Result<Subscription, ClientError> {
        self.call(Call::Subscribe)?;
        Ok(Subscription { client: self })
    }
}

/// A stream of events from `subscribe`.
pub struct Subscription {
    client: Client,
}

impl Subscription {
    /// Waits for the next event; `Ok(None)` when a read timeout passes first.
    pub fn next_event(&mut self) -> Result<Option<EventLine>, ClientError> {
        match self.client.read_line() {
            Ok(line) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string())),
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets how long `next_event` waits.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.client.set_timeout(timeout)
    }
}
