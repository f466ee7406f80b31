//! yuanlu's payment channels. A refund goes back along the route its payment came by; each
//! channel is reached through a [`RefundConnector`] with two flows, and reports back by
//! callbacks that [`RefundConnector::parse_callback`] verifies.
//!
//! - [`connector`]: the interface every channel implements, and the shared types.
//! - [`wechat`], [`alipay`], [`card`]: the three connectors (HTTP clients and the exhaustive
//!   mapping of each channel's statuses onto ours).
//! - [`http`]: the connectors' shared configuration ([`ConnectorConfig`]), signed requests,
//!   and the transport-failure mapping behind the unknown outcome.
//! - [`simulator`]: HTTP servers that speak each channel's shape, keep their own books, and
//!   inject faults (latency, errors, lost responses, abnormal accounts, slow confirmation,
//!   duplicate and out-of-order callbacks).
//! - [`signing`]: HMAC-SHA256 signatures shared by connectors and simulators.

pub mod alipay;
pub mod card;
pub mod connector;
pub mod http;
pub mod signing;
pub mod simulator;
pub mod wechat;

pub use alipay::AlipayConnector;
pub use card::CardConnector;
pub use connector::*;
pub use http::{ConnectorBuildError, ConnectorConfig};
pub use wechat::WechatConnector;
