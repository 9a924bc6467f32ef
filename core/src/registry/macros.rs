//! Macros shared by the registry's modules.

/// Typed messages for registry operations, each answered by one method of the registry.
macro_rules! registry_messages {
    ($($name:ident { $($field:ident : $ty:ty),* } -> $res:ty => $method:ident;)*) => {$(
        pub struct $name { $(pub $field: $ty),* }

        impl actix::Message for $name {
            type Result = $res;
        }

        impl actix::Handler<$name> for $crate::registry::clients::ClientRegistry {
            type Result = actix::MessageResult<$name>;
            fn handle(&mut self, msg: $name, _: &mut actix::Context<Self>) -> Self::Result {
                let $name { $($field),* } = msg;
                actix::MessageResult(self.$method($($field),*))
            }
        }
    )*};
}
