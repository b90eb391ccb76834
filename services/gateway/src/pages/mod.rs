//! Server-rendered pages on the API's listener, for the users who are not brokers:
//!
//! ```text
//! GET  /check[?q=PAYLOAD|RECEIPT-ID|LRN|ID]   checkpoint officer: the form (with q: a check)
//! POST /check                        a check, recorded → 303 /check/{id}
//! GET  /check/{id}                   a recorded check's card, with its signed record
//! POST /v1/checks, GET /v1/checks/{id}, POST /v1/checks/offline   the checks' API
//! GET  /static/check.js, /check-sw.js   the offline verifier (progressive enhancement)
//! GET  /declarations/{id}            auditor: audit trail, report, certificate path, downloads
//! GET  /declarations/{id}/{file}     receipt.xml | countersigned.xml | report.json | qr.svg
//! GET  /dashboard[.csv]              ministry analyst: per corridor and day/hour
//! GET  /login, POST /login, POST /logout
//! GET  /v1/trust-bundle              the signed offline trust bundle (public)
//! ```
//!
//! Forms and links; the one script is `/check`'s offline verifier, which only adds to the
//! server-rendered flow (`static/check.js`). Officers, auditors and analysts sign in with their own
//! page tokens (`tamga gateway token create --role officer|auditor|analyst`), kept apart
//! from brokers' API tokens; the token travels in an HttpOnly, SameSite=Strict cookie (or
//! an `Authorization: Bearer` header). Texts come from the Fluent catalogues in
//! `locales/` ([`i18n`]).

// A page handler's early return is the response itself (the sign-in page, a 403, a 503):
// `Result<_, Response>` reads as that, and the size of the error does not matter here.
#![allow(clippy::result_large_err)]

pub mod auditor;
pub mod check;
pub mod checks;
pub mod dashboard;
pub mod dashboard_checks;
pub mod goods;
pub mod i18n;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tamga_dsig::Signer;
use tamga_pipeline::config::ChecksConfig;
use tamga_store::{ChecksStore, PageRole, PageTokenOwner, PagesStore, StoreError};
use tamga_trust::{CountryCode, TrustFile, TrustList};

use crate::{token, Gateway, GatewayError};

/// The cookie holding a signed-in user's page token.
pub const SESSION_COOKIE: &str = "tamga_page";
/// The cookie remembering the language chosen with the switch.
pub const LANG_COOKIE: &str = "tamga_lang";

/// The key that signs trust bundles (the site's first authority).
pub struct BundleSigner {
    pub signer: Box<dyn Signer + Send + Sync>,
    /// Certificate first, then its chain (DER).
    pub chain: Vec<Vec<u8>>,
    pub country: String,
}

impl std::fmt::Debug for BundleSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleSigner")
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

/// The pages' state.
pub struct Pages {
    pub gw: Arc<Gateway>,
    pub store: Arc<dyn PagesStore>,
    /// The same store, for the checkpoint's queries.
    pub checks: Arc<dyn ChecksStore>,
    /// `[gateway.checks]`.
    pub checks_cfg: ChecksConfig,
    /// Where `checked` events are counted (the site's registry).
    pub metrics: Arc<tamga_pipeline::Metrics>,
    pub trust: Arc<TrustList>,
    /// When the trust list was loaded (Unix seconds): "checked against the trust list of".
    pub trust_loaded_at: i64,
    trust_files: Vec<TrustFile>,
    bundle_signer: Option<BundleSigner>,
    /// The site's authority certificates (leaf of each), for QR codes without `x5chain`.
    authorities: Vec<Vec<u8>>,
    env: minijinja::Environment<'static>,
    pub i18n: i18n::I18n,
    /// Per chain, the highest `(seq, hash)` verified so far: auditor pages verify only what
    /// was appended since.
    watermarks: Mutex<HashMap<String, (i64, String)>>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

const TEMPLATES: [(&str, &str); 8] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "forbidden.html",
        include_str!("../../templates/forbidden.html"),
    ),
    ("check.html", include_str!("../../templates/check.html")),
    ("card.html", include_str!("../../templates/card.html")),
    (
        "declaration.html",
        include_str!("../../templates/declaration.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    (
        "dashboard_checks.html",
        include_str!("../../templates/dashboard_checks.html"),
    ),
];

/// Reads `<dir>/<CC>/*` as the bundle's files (hidden files and non-country folders
/// skipped, as the trust list does).
pub fn read_trust_files(dir: &Path) -> Result<Vec<TrustFile>, GatewayError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| GatewayError::Io { what, source }
    };
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(country) = name.parse::<CountryCode>() else {
            continue;
        };
        if !e.path().is_dir() {
            continue;
        }
        let mut inner: Vec<_> = std::fs::read_dir(e.path())
            .map_err(io(&e.path()))?
            .filter_map(Result::ok)
            .collect();
        inner.sort_by_key(std::fs::DirEntry::file_name);
        for f in inner {
            let fname = f.file_name().to_string_lossy().into_owned();
            if fname.starts_with('.') || !f.path().is_file() {
                continue;
            }
            files.push(TrustFile {
                country,
                name: fname,
                bytes: std::fs::read(f.path()).map_err(io(&f.path()))?,
            });
        }
    }
    Ok(files)
}

impl Pages {
    /// The pages over `store`, with the trust directory `trust_dir` and the site's
    /// authority keys (`authorities[0]` signs trust bundles and check records).
    pub fn new(
        gw: Arc<Gateway>,
        store: Arc<dyn ChecksStore>,
        trust_dir: &Path,
        authorities: Vec<BundleSigner>,
        now_unix: i64,
        checks_cfg: ChecksConfig,
        metrics: Arc<tamga_pipeline::Metrics>,
    ) -> Result<Arc<Self>, GatewayError> {
        let trust_files = read_trust_files(trust_dir)?;
        let trust = TrustList::from_files(trust_files.clone())
            .map_err(|e| GatewayError::Usage(format!("trust list: {e}")))?;
        let mut env = minijinja::Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .map_err(|e| GatewayError::Usage(format!("template {name}: {e}")))?;
        }
        let i18n = i18n::I18n::new().map_err(GatewayError::Usage)?;
        let leaves = authorities
            .iter()
            .filter_map(|a| a.chain.first().cloned())
            .collect();
        Ok(Arc::new(Self {
            gw,
            store: store.clone(),
            checks: store,
            checks_cfg,
            metrics,
            trust: Arc::new(trust),
            trust_loaded_at: now_unix,
            trust_files,
            bundle_signer: authorities.into_iter().next(),
            authorities: leaves,
            env,
            i18n,
            watermarks: Mutex::new(HashMap::new()),
        }))
    }

    fn store_error(&self, what: &str, e: &StoreError) -> Response {
        tracing::warn!(what, error = %e, "pages: store error");
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable; try again.",
        )
            .into_response();
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.gw.settings.retry_after_secs),
        );
        r
    }

    fn render(&self, name: &str, status: StatusCode, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => {
                let mut r = (status, html).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'none'; script-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
                    ),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => {
                tracing::error!(template = name, error = %e, "pages: template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be rendered.",
                )
                    .into_response()
            }
        }
    }
}

/// What every page's template gets.
#[derive(Debug, Serialize)]
pub struct Common {
    pub lang: &'static str,
    pub msg: std::collections::BTreeMap<String, String>,
    pub languages: Vec<LangLink>,
    pub user: Option<User>,
    pub signed_in_as: String,
}

#[derive(Debug, Serialize)]
pub struct LangLink {
    pub code: &'static str,
    pub name: String,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub holder: String,
    pub role: &'static str,
}

/// One request's view of who and which language.
#[derive(Debug)]
pub struct Request {
    pub lang: &'static str,
    /// Set when `?lang=` chose the language (the cookie is then set).
    pub lang_chosen: bool,
    pub user: Option<PageTokenOwner>,
    pub path: String,
    pub query: Vec<(String, String)>,
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `?a=b&c=d` pairs.
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// This page in another language (the query kept, `lang` replaced).
    fn href_in(&self, lang: &str) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.query.iter().filter(|(k, _)| k != "lang") {
            ser.append_pair(k, v);
        }
        ser.append_pair("lang", lang);
        format!("{}?{}", self.path, ser.finish())
    }

    /// The path and query to come back to after signing in.
    fn here(&self) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.query.iter().filter(|(k, _)| k != "lang") {
            ser.append_pair(k, v);
        }
        let q = ser.finish();
        if q.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{q}", self.path)
        }
    }
}

impl Pages {
    /// Who is asking (cookie or bearer page token) and in which language.
    pub async fn request(
        &self,
        headers: &HeaderMap,
        path: &str,
        query: Option<&str>,
    ) -> Result<Request, Response> {
        let query = parse_query(query);
        let qlang = query
            .iter()
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.as_str());
        let lang = i18n::negotiate(
            qlang,
            cookie(headers, LANG_COOKIE),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(token::bearer)
            .or_else(|| {
                cookie(headers, SESSION_COOKIE)
                    .filter(|t| token::bearer(&format!("Bearer {t}")).is_some())
            });
        let user = match presented {
            Some(t) => self
                .store
                .page_token(&token::hash(t))
                .await
                .map_err(|e| self.store_error("page_token", &e))?,
            None => None,
        };
        Ok(Request {
            lang,
            lang_chosen: qlang.is_some_and(|l| i18n::LANGUAGES.contains(&l)),
            user,
            path: path.to_owned(),
            query,
        })
    }

    pub fn common(&self, req: &Request) -> Common {
        let user = req.user.as_ref().map(|u| User {
            holder: u.holder.clone(),
            role: u.role.as_str(),
        });
        Common {
            lang: req.lang,
            msg: self.i18n.all(req.lang),
            languages: i18n::LANGUAGES
                .iter()
                .map(|l| LangLink {
                    code: l,
                    name: self.i18n.get(l, "lang-name", &[]),
                    href: req.href_in(l),
                })
                .collect(),
            signed_in_as: user
                .as_ref()
                .map(|u| {
                    self.i18n.get(
                        req.lang,
                        "signed-in-as",
                        &[("holder", &u.holder), ("role", u.role)],
                    )
                })
                .unwrap_or_default(),
            user,
        }
    }

    /// The page, with the language cookie set when `?lang=` chose it.
    pub fn page(
        &self,
        req: &Request,
        name: &str,
        status: StatusCode,
        extra: minijinja::Value,
    ) -> Response {
        let ctx =
            minijinja::context! { ..minijinja::Value::from_serialize(self.common(req)), ..extra };
        let mut r = self.render(name, status, ctx);
        if req.lang_chosen {
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                req.lang
            )) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        r
    }

    /// The signed-in user when their role is one of `roles`; otherwise the sign-in page
    /// (401) or a 403 page.
    pub fn require(&self, req: &Request, roles: &[PageRole]) -> Result<PageTokenOwner, Response> {
        match &req.user {
            None => Err(self.page(
                req,
                "login.html",
                StatusCode::UNAUTHORIZED,
                minijinja::context! { next => req.here(), failed => false },
            )),
            Some(u) if roles.contains(&u.role) => Ok(u.clone()),
            Some(u) => Err(self.page(
                req,
                "forbidden.html",
                StatusCode::FORBIDDEN,
                minijinja::context! {
                    forbidden_text => self.i18n.get(req.lang, "forbidden-text", &[("role", u.role.as_str())]),
                },
            )),
        }
    }

    /// `YYYY-MM-DD HH:MM UTC`.
    pub fn when(ms: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .ok()
            })
            .unwrap_or_default()
    }
}

async fn login_form(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match p.request(&headers, "/login", q.as_deref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let next = safe_next(req.param("next"));
    p.page(
        &req,
        "login.html",
        StatusCode::OK,
        minijinja::context! { next => next, failed => false },
    )
}

/// Only a local path: never a redirect to another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/check".to_owned(),
    }
}

async fn login(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_query(std::str::from_utf8(&body).ok());
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let token = get("token").unwrap_or_default();
    let next = safe_next(get("next").as_deref());
    let lang_query = get("lang").map(|l| format!("lang={l}"));
    let req = match p.request(&headers, "/login", lang_query.as_deref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let owner = if token::bearer(&format!("Bearer {token}")).is_some() {
        match p.store.page_token(&token::hash(&token)).await {
            Ok(o) => o,
            Err(e) => return p.store_error("page_token", &e),
        }
    } else {
        None
    };
    match owner {
        Some(_) => {
            let mut r = Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, next)
                .body(Body::empty())
                .unwrap_or_default();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
            )) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        None => p.page(
            &req,
            "login.html",
            StatusCode::UNAUTHORIZED,
            minijinja::context! { next => next, failed => true },
        ),
    }
}

async fn logout() -> Response {
    let mut r = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/login")
        .body(Body::empty())
        .unwrap_or_default();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("tamga_page=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// `GET /v1/trust-bundle`: signed with the site's first authority key (public: it holds
/// only public material, and a checkpoint verifies it against its own trust directory).
async fn trust_bundle(State(p): State<Arc<Pages>>) -> Response {
    let Some(signer) = &p.bundle_signer else {
        return crate::problem::Problem::new(
            crate::problem::Kind::Unavailable,
            "This site has no authority key to sign a trust bundle.",
        )
        .into_response();
    };
    let now = tamga_pipeline::now_ms().div_euclid(1000);
    let validity = i64::from(p.checks_cfg.bundle_validity_hours).saturating_mul(3600);
    let bundle = tamga_qr::bundle::Bundle {
        issued_at: now,
        next_update: now + validity,
        issuer_country: signer.country.clone(),
        files: p.trust_files.clone(),
        authorities: p.authorities.clone(),
    };
    match bundle.sign(signer.signer.as_ref(), &signer.chain) {
        Ok(bytes) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/cose; cose-type=\"cose-sign1\""),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "attachment; filename=\"tamga-trust-bundle-{now}.cose\""
            )) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "trust bundle signing failed");
            crate::problem::Problem::new(
                crate::problem::Kind::Internal,
                "The trust bundle could not be signed.",
            )
            .into_response()
        }
    }
}

/// The API routes the pages serve (documented in the OpenAPI document with
/// [`crate::ROUTES`]): the checks, authenticated by page tokens.
pub const CHECK_ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/checks"),
    ("post", "/v1/checks/offline"),
    ("get", "/v1/checks/{id}"),
];

/// The pages' routes (merged with the API's by [`crate::serve`]).
pub fn router(pages: Arc<Pages>) -> Router {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/check", get(check::page).post(check::submit))
        .route("/check/{id}", get(check::show))
        .route("/static/check.js", get(check::script))
        .route("/check-sw.js", get(check::service_worker))
        .route("/v1/checks", axum::routing::post(checks::create))
        .route("/v1/checks/offline", axum::routing::post(checks::upload))
        .route("/v1/checks/{id}", get(checks::get_record))
        .route("/declarations/{id}", get(auditor::page))
        .route("/declarations/{id}/{file}", get(auditor::download))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard.csv", get(dashboard::csv))
        .route("/dashboard/checks.csv", get(dashboard_checks::csv))
        .route("/v1/trust-bundle", get(trust_bundle))
        .with_state(pages)
}

/// A new page token for `holder` with `role`; shown once, only its SHA-256 is stored.
pub async fn create_page_token(
    store: &dyn PagesStore,
    holder: &str,
    role: PageRole,
) -> Result<String, GatewayError> {
    if holder.is_empty() || holder.len() > 128 || holder.chars().any(char::is_control) {
        return Err(GatewayError::Usage(
            "--broker must be 1 to 128 characters, no control characters".into(),
        ));
    }
    let t = token::generate().map_err(GatewayError::Usage)?;
    store
        .create_page_token(&token::hash(&t), holder, role, tamga_pipeline::now_ms())
        .await?;
    Ok(t)
}

/// Revokes every page token of `holder`; returns how many.
pub async fn revoke_page_tokens(store: &dyn PagesStore, holder: &str) -> Result<u64, GatewayError> {
    Ok(store
        .revoke_page_tokens(holder, tamga_pipeline::now_ms())
        .await?)
}
