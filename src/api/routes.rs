//! The routing table. Each area declares its routes once, with [`routes!`]: that one list both
//! registers the handlers and is kept as the area's `ROUTES`, so the table a test holds against
//! `/openapi.json` is the table the server answers from.

/// A route: (HTTP method, lowercase as actix names it; path pattern).
pub type Route = (&'static str, &'static str);

/// An area's routes and the function that registers them.
pub type Area = (&'static [Route], fn(&mut actix_web::web::ServiceConfig));

/// `path => { method: handler, … }, …` becomes `pub const ROUTES` and `pub fn configure`.
macro_rules! routes {
    ($($path:expr => { $($method:ident: $handler:path),+ $(,)? }),* $(,)?) => {
        /// Every (method, path) this area answers.
        pub const ROUTES: &[crate::api::routes::Route] = &[$($((stringify!($method), $path)),+),*];

        pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
            $(
                // Named by its pattern: the request log reads the name, which it can borrow,
                // where `match_pattern` would build the pattern again for every request.
                cfg.service(
                    actix_web::web::resource($path)
                        .name($path)
                        $(.route(actix_web::web::$method().to($handler)))+
                );
            )*
        }
    };
}

pub(crate) use routes;
