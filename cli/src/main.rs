//! `zring`: a ZeroMQ socket of any type from the shell.
//!
//! A receiving socket prints each message on a line, frames separated by a tab, bytes that are not
//! printable UTF-8 as `\xNN`. A sending socket sends each `--send`, or else each line of standard
//! input; a tab in a text separates frames. `req` prints each reply; `rep` answers each request with
//! `--reply` or echoes it.

mod bench;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use zring::{Context, Error, Msg, Socket, SocketType};

/// The socket types, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Pair,
    Pub,
    Sub,
    Xpub,
    Xsub,
    Req,
    Rep,
    Dealer,
    Router,
    Push,
    Pull,
}

impl Kind {
    fn socket_type(self) -> SocketType {
        match self {
            Kind::Pair => SocketType::Pair,
            Kind::Pub => SocketType::Pub,
            Kind::Sub => SocketType::Sub,
            Kind::Xpub => SocketType::XPub,
            Kind::Xsub => SocketType::XSub,
            Kind::Req => SocketType::Req,
            Kind::Rep => SocketType::Rep,
            Kind::Dealer => SocketType::Dealer,
            Kind::Router => SocketType::Router,
            Kind::Push => SocketType::Push,
            Kind::Pull => SocketType::Pull,
        }
    }
}

/// A ZeroMQ socket from the shell, a peer of any libzmq, pyzmq or zring program.
/// (`zring bench --help`: zring against libzmq, side by side.)
#[derive(Debug, Parser)]
#[command(name = "zring", version, about)]
struct Args {
    /// The socket type.
    #[arg(value_enum)]
    kind: Kind,
    /// Bind to an endpoint (tcp://host:port, inproc://name); repeatable.
    #[arg(long, value_name = "EP")]
    bind: Vec<String>,
    /// Connect to an endpoint; repeatable.
    #[arg(long, value_name = "EP")]
    connect: Vec<String>,
    /// SUB: a topic prefix to receive (none: everything); repeatable.
    #[arg(long, value_name = "TOPIC")]
    subscribe: Vec<String>,
    /// A message to send (a tab separates frames); repeatable. Without any, each line of standard
    /// input is sent.
    #[arg(long, value_name = "TEXT")]
    send: Vec<String>,
    /// REP: the answer to every request (default: the request itself).
    #[arg(long, value_name = "TEXT")]
    reply: Option<String>,
    /// Exit after receiving this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Give up (exit status 1) when a send or receive waits longer than this.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
}

/// A message line as frames: a tab separates them.
fn frames(text: &str) -> Vec<Msg> {
    text.split('\t').map(Msg::from).collect()
}

/// One frame for printing: printable UTF-8 as is, every other byte as `\xNN`.
fn printable(frame: &[u8], out: &mut String) {
    let mut rest = frame;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let (ok, _) = rest.split_at(e.valid_up_to());
                // `valid_up_to` bytes are valid UTF-8 by the error's contract.
                let s = std::str::from_utf8(ok).unwrap_or_default();
                (s, e.error_len().unwrap_or(rest.len() - e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        let after = &rest[valid.len()..];
        for b in &after[..bad] {
            out.push_str(&format!("\\x{b:02x}"));
        }
        rest = &after[bad..];
    }
}

fn line(parts: &[Msg]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        printable(p, &mut out);
    }
    out
}

/// What went wrong, said in one line.
fn say(e: &Error, timeout: Option<f64>) -> String {
    match (e, timeout) {
        (Error::WouldBlock, Some(t)) => format!("timed out after {t} s"),
        _ => e.to_string(),
    }
}

struct Tool {
    socket: Socket,
    out: std::io::StdoutLock<'static>,
    received: u64,
    count: Option<u64>,
}

impl Tool {
    fn print(&mut self, parts: &[Msg]) -> Result<(), Error> {
        writeln!(self.out, "{}", line(parts))?;
        self.out.flush()?;
        self.received += 1;
        Ok(())
    }

    fn done(&self) -> bool {
        self.count.is_some_and(|n| self.received >= n)
    }

    /// Receives and prints until `--count` is reached (or for ever).
    fn receive_all(&mut self) -> Result<(), Error> {
        while !self.done() {
            let parts = self.socket.recv_multipart()?;
            self.print(&parts)?;
        }
        Ok(())
    }
}

/// The messages to send: every `--send`, or else every line of standard input.
fn outgoing(args: &Args) -> Box<dyn Iterator<Item = Result<String, Error>>> {
    if args.send.is_empty() {
        Box::new(
            std::io::stdin()
                .lock()
                .lines()
                .map(|l| l.map_err(Error::from)),
        )
    } else {
        Box::new(args.send.clone().into_iter().map(Ok))
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let ctx = Context::new();
    let mut socket = ctx.socket(args.kind.socket_type())?;
    let timeout = args.timeout.map(Duration::from_secs_f64);
    socket.set_rcvtimeo(timeout)?;
    socket.set_sndtimeo(timeout)?;
    socket.set_linger(timeout)?;
    for ep in &args.bind {
        socket.bind(ep)?;
    }
    for ep in &args.connect {
        socket.connect(ep)?;
    }
    if args.kind == Kind::Sub {
        if args.subscribe.is_empty() {
            socket.subscribe("")?;
        }
        for topic in &args.subscribe {
            socket.subscribe(topic)?;
        }
    }
    let mut tool = Tool {
        socket,
        out: std::io::stdout().lock(),
        received: 0,
        count: args.count,
    };
    match args.kind {
        Kind::Pull | Kind::Sub => tool.receive_all()?,
        Kind::Push | Kind::Pub => {
            for text in outgoing(args) {
                tool.socket.send_multipart(frames(&text?))?;
            }
        }
        Kind::Req => {
            for text in outgoing(args) {
                tool.socket.send_multipart(frames(&text?))?;
                let reply = tool.socket.recv_multipart()?;
                tool.print(&reply)?;
                if tool.done() {
                    break;
                }
            }
        }
        Kind::Rep => {
            while !tool.done() {
                let request = tool.socket.recv_multipart()?;
                tool.print(&request)?;
                match &args.reply {
                    Some(text) => tool.socket.send_multipart(frames(text))?,
                    None => tool.socket.send_multipart(request)?,
                }
            }
        }
        Kind::Pair | Kind::Dealer | Kind::Router | Kind::Xpub | Kind::Xsub => {
            for text in &args.send {
                tool.socket.send_multipart(frames(text))?;
            }
            tool.receive_all()?;
        }
    }
    drop(tool);
    drop(ctx);
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("bench") => {
            let args = bench::BenchArgs::parse_from(argv.iter().skip(1));
            return finish(bench::run(&args));
        }
        Some("__bench-serve") => {
            return finish(bench::serve_command(argv.get(2..).unwrap_or_default()))
        }
        Some("__bench-memory") => {
            return finish(bench::memory_main(argv.get(2..).unwrap_or_default()))
        }
        _ => {}
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zring: {}", say(&e, args.timeout));
            ExitCode::FAILURE
        }
    }
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zring: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_print_with_tabs_and_escapes() {
        let parts = [
            Msg::from(&b"\x00a\xff"[..]),
            Msg::from("b c"),
            Msg::from("é\n"),
        ];
        assert_eq!(line(&parts), "\\x00a\\xff\tb c\té\\x0a");
        assert_eq!(frames("id\t\tbody").len(), 3);
    }
}
