//! Public interaction datasets for offline evaluation, read into dense indices: MovieLens in
//! RecBole's `.inter` layout (or the original tab-separated `u.data`), and Instacart order lines.
//! Parsing is strict about structure and names the line that breaks it.

use std::collections::HashMap;

/// One interaction: who, what, how strongly, and when (any number that grows with time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub user: u32,
    pub item: u32,
    pub weight: f32,
    pub at: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub n_users: usize,
    pub n_items: usize,
    pub events: Vec<Event>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DatasetError {
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("the file has no header naming columns {0}")]
    MissingColumns(String),
    #[error("the dataset has no interactions")]
    Empty,
}

/// Interns string ids into dense indices.
#[derive(Default)]
struct Ids(HashMap<String, u32>);

impl Ids {
    fn of(&mut self, id: &str) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(id.to_owned()).or_insert(next)
    }
}

fn finish(users: Ids, items: Ids, events: Vec<Event>) -> Result<Dataset, DatasetError> {
    if events.is_empty() {
        return Err(DatasetError::Empty);
    }
    Ok(Dataset { n_users: users.0.len(), n_items: items.0.len(), events })
}

/// MovieLens: RecBole's `user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float`
/// with that header, or `u.data` (the same four columns, no header). Every rating is a positive
/// interaction of weight 1, as in the implicit-feedback protocols.
pub fn movielens(text: &str) -> Result<Dataset, DatasetError> {
    let (mut users, mut items, mut events) = (Ids::default(), Ids::default(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() || (n == 0 && line.contains("user_id")) {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 4 {
            return Err(DatasetError::Line {
                line: line_no,
                why: format!("expected 4 tab-separated fields, got {}", fields.len()),
            });
        }
        let at: f64 = fields[3].trim().parse().map_err(|_| DatasetError::Line {
            line: line_no,
            why: format!("timestamp {:?} is not a number", fields[3]),
        })?;
        if fields[0].trim().is_empty() || fields[1].trim().is_empty() {
            return Err(DatasetError::Line { line: line_no, why: "empty user or item id".into() });
        }
        events.push(Event { user: users.of(fields[0].trim()), item: items.of(fields[1].trim()), weight: 1.0, at });
    }
    finish(users, items, events)
}

/// Instacart order lines (`df_sample.csv`: columns include `user_id`, `order_number`,
/// `product_id` and `add_to_cart_order`). Each line is one purchase of weight 1; its time is the
/// order's number for its user, then the position in the cart.
pub fn instacart(text: &str) -> Result<Dataset, DatasetError> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines.next().map(|(_, h)| h.split(',').map(str::trim).collect()).unwrap_or_default();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(user), Some(order), Some(product), Some(cart)) =
        (column("user_id"), column("order_number"), column("product_id"), column("add_to_cart_order"))
    else {
        return Err(DatasetError::MissingColumns("user_id, order_number, product_id, add_to_cart_order".into()));
    };
    let (mut users, mut items, mut events) = (Ids::default(), Ids::default(), Vec::new());
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let get = |i: usize| fields.get(i).map(|f| f.trim()).filter(|f| !f.is_empty());
        let bad = |why: &str| DatasetError::Line { line: n + 1, why: why.to_owned() };
        let (Some(u), Some(o), Some(p)) = (get(user), get(order), get(product)) else {
            return Err(bad("missing user_id, order_number or product_id"));
        };
        let order_no: f64 = o.parse().map_err(|_| bad("order_number is not a number"))?;
        let position: f64 =
            get(cart).map_or(Ok(0.0), str::parse).map_err(|_| bad("add_to_cart_order is not a number"))?;
        events.push(Event { user: users.of(u), item: items.of(p), weight: 1.0, at: order_no * 1000.0 + position });
    }
    finish(users, items, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movielens_with_and_without_header() {
        let with = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t1\n";
        let d = movielens(with).unwrap();
        assert_eq!((d.n_users, d.n_items, d.events.len()), (2, 2, 3));
        assert_eq!(d.events[2], Event { user: 0, item: 1, weight: 1.0, at: 1.0 });
        assert_eq!(movielens("1\t2\t3\t4\n").unwrap().events.len(), 1);
    }

    #[test]
    fn instacart_orders_by_order_then_cart_position() {
        let text = ",order_id,user_id,order_number,order_dow,order_hour_of_day,days_since_prior_order,product_id,add_to_cart_order,reordered\n\
                    0,2539329,1,1,2,8,,196,1.0,0.0\n1,2539329,1,1,2,8,,14084,2.0,0.0\n2,2398795,1,2,3,7,15.0,196,1.0,1.0\n";
        let d = instacart(text).unwrap();
        assert_eq!((d.n_users, d.n_items), (1, 2));
        let at: Vec<f64> = d.events.iter().map(|e| e.at).collect();
        assert_eq!(at, vec![1001.0, 1002.0, 2001.0]);
    }

    #[test]
    fn malformed_input_names_the_line() {
        assert_eq!(movielens(""), Err(DatasetError::Empty));
        assert!(matches!(movielens("1\t2\n"), Err(DatasetError::Line { line: 1, .. })));
        assert!(matches!(movielens("1\t2\t3\t4\n1\t2\t3\tsoon\n"), Err(DatasetError::Line { line: 2, .. })));
        assert!(matches!(movielens("\t2\t3\t4\n"), Err(DatasetError::Line { line: 1, .. })));
        assert!(matches!(instacart("a,b\n1,2\n"), Err(DatasetError::MissingColumns(_))));
        let text = "user_id,order_number,product_id,add_to_cart_order\n1,x,3,1\n";
        assert!(matches!(instacart(text), Err(DatasetError::Line { line: 2, .. })));
        let text = "user_id,order_number,product_id,add_to_cart_order\n1,1\n";
        assert!(matches!(instacart(text), Err(DatasetError::Line { line: 2, .. })));
        // Binary junk is an error, not a panic.
        assert!(movielens("\u{0}\u{1}\t\u{ff}").is_err());
        assert!(instacart("\u{0}").is_err());
    }
}
