//! Prints the Tamga topology as RabbitMQ definitions:
//! `cargo run -p tamga-bus --example definitions > infra/rabbitmq/definitions.json`
//! (a unit test holds the file to the code; it compares meaning, so the file's
//! keys may stay in the readable order they have in the repository).

fn main() -> Result<(), serde_json::Error> {
    let topology = tamga_bus::tamga_topology(tamga_bus::DEFAULT_STAGE_DELIVERY_LIMIT);
    let text = serde_json::to_string_pretty(&topology.to_definitions("/"))?;
    println!("{text}");
    Ok(())
}
