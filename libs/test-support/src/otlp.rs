//! An OTLP/HTTP trace receiver that speaks the collector's wire format, for checking what a real
//! exporter sent.

use std::net::SocketAddr;

/// An OTLP/HTTP trace receiver that speaks the collector's wire format (`POST /v1/traces`, a
/// protobuf `ExportTraceServiceRequest`) and keeps what it received, so tests can check what a
/// real exporter sent.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// One span as the receiver decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
}

impl OtlpReceiver {
    /// Starts the receiver on a free port, on a thread of its own.
    pub fn start() -> anyhow::Result<OtlpReceiver> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message as _;

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let store = spans.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let app = axum::Router::new().route(
                    "/v1/traces",
                    axum::routing::post(move |body: axum::body::Bytes| async move {
                        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                            return axum::http::StatusCode::BAD_REQUEST;
                        };
                        let mut received = store.lock().unwrap_or_else(|e| e.into_inner());
                        for resource_spans in request.resource_spans {
                            let service_name = resource_spans
                                .resource
                                .iter()
                                .flat_map(|resource| &resource.attributes)
                                .find(|attribute| attribute.key == "service.name")
                                .and_then(|attribute| attribute.value.as_ref())
                                .and_then(|value| match &value.value {
                                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(name)) => {
                                        Some(name.clone())
                                    }
                                    _ => None,
                                })
                                .unwrap_or_default();
                            for scope_spans in resource_spans.scope_spans {
                                for span in scope_spans.spans {
                                    let trace_id: String =
                                        span.trace_id.iter().map(|byte| format!("{byte:02x}")).collect();
                                    received.push(ReceivedSpan {
                                        service_name: service_name.clone(),
                                        name: span.name,
                                        trace_id,
                                    });
                                }
                            }
                        }
                        axum::http::StatusCode::OK
                    }),
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
            })?;
            Ok::<_, std::io::Error>(())
        });
        Ok(OtlpReceiver {
            addr,
            spans,
            stop: Some(stop),
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
