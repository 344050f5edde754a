"""The built-in word lists every page draws its content from.

Everything here is invented (no real shop, company or person), short enough to fit the narrowest layout
column it is used in (receipt item names stay within 20 characters), and free of trailing punctuation, so
that a value printed on a page is always a whole-word span a question can point at.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "James", "Kira", "Liam",
    "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Samuel", "Tara", "Umar", "Vera", "Wei", "Yusuf", "Zoe",
    "Marta", "Oscar", "Priya", "Jonas", "Leila",
)  # fmt: skip

LAST_NAMES = (
    "Smith", "Garcia", "Novak", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Kowalski", "Haddad",
    "Fischer", "Silva", "Murphy", "Jensen", "Costa", "Nakamura", "Petrov", "Dubois", "Schmidt", "Alvarez",
    "Brennan", "Horvat", "Mendes", "Varga", "Lee",
)  # fmt: skip

TITLES = ("Mr.", "Ms.", "Dr.", "Mrs.")

STREETS = (
    "Oak Street", "Elm Avenue", "Station Road", "Harbour Lane", "Mill Road", "King Street", "Park Avenue",
    "Church Lane", "Willow Way", "Bridge Street", "Maple Drive", "Victoria Road", "Cedar Court", "High Street",
    "Lake View Road", "Orchard Close",
)  # fmt: skip

CITIES = (
    "Springfield", "Riverton", "Lakewood", "Fairview", "Greenville", "Brookfield", "Kingsport", "Milton",
    "Ashford", "Clearwater", "Oakdale", "Westbury", "Northam", "Redcliff", "Hollowell", "Stonebridge",
)  # fmt: skip

SHOPS = (
    "Green Leaf Market", "Corner Bakery", "Blue Harbor Cafe", "City Hardware", "Sunrise Grocers",
    "Maple Street Deli", "Northside Pharmacy", "Golden Wok", "Fresh Fields", "The Book Nook",
    "Urban Coffee Co.", "Pine Valley Foods", "Red Kite Diner", "Silver Spoon Bistro", "Daily Needs Store",
)  # fmt: skip

RECEIPT_ITEMS: tuple[tuple[str, int, int], ...] = (
    ("Coffee", 250, 450), ("Cappuccino", 300, 520), ("Green tea", 180, 350), ("Croissant", 150, 320),
    ("Bagel", 180, 350), ("Orange juice", 250, 480), ("Whole milk 1L", 99, 189), ("Brown bread", 179, 399),
    ("Free range eggs", 249, 499), ("Cheddar cheese", 299, 699), ("Bananas", 99, 249), ("Apples 1kg", 199, 399),
    ("Tomato soup", 149, 299), ("Pasta 500g", 99, 229), ("Olive oil", 499, 1199), ("Chocolate bar", 89, 249),
    ("Mineral water", 59, 159), ("Toothpaste", 199, 449), ("Paper towels", 249, 599), ("Dish soap", 179, 349),
    ("AA batteries", 399, 899), ("Light bulb", 299, 699), ("Notebook", 199, 499), ("Blue pen", 99, 249),
    ("Chicken salad", 499, 899), ("Veggie wrap", 450, 750), ("Muffin", 180, 320), ("Ice cream", 299, 599),
)  # fmt: skip
"""(name, lowest unit price, highest unit price) in cents: prices that look like the thing."""

PAYMENTS = ("CASH", "VISA", "MASTERCARD", "DEBIT CARD")

RECEIPT_FOOTERS = (
    "Thank you for shopping with us", "Please come again", "Thank you for your visit",
    "Have a nice day", "Keep this receipt for returns",
)  # fmt: skip

COMPANIES = (
    "Brightline Software Ltd.", "Northwind Supplies", "Harbor & Finch LLP", "Quantum Office Goods",
    "Bluebird Logistics", "Evergreen Consulting", "Summit Print Works", "Ironwood Engineering",
    "Clearview Media Group", "Copperleaf Interiors", "Kestrel Data Systems", "Orion Facility Services",
)  # fmt: skip

SERVICES: tuple[tuple[str, int, int], ...] = (
    ("Website design", 40000, 250000), ("Consulting hours", 6000, 15000), ("Office chairs", 8000, 30000),
    ("Printer paper (box)", 2000, 4500), ("Software license", 10000, 90000), ("Maintenance contract", 20000, 120000),
    ("Delivery fee", 1500, 6000), ("Installation", 5000, 40000), ("Training session", 30000, 150000),
    ("Laptop stand", 2500, 7000), ("Cloud hosting (month)", 5000, 50000), ("Logo design", 15000, 80000),
    ("Network cabling", 10000, 60000), ("Desk lamps", 2000, 6500), ("Data backup service", 4000, 20000),
    ("Annual support plan", 50000, 200000), ("Translation (per page)", 1500, 4000), ("Catering", 20000, 90000),
)  # fmt: skip
"""(description, lowest unit price, highest unit price) in cents."""

PAYMENT_TERMS = ("Net 30", "Net 14", "Due on receipt", "Net 60")

FORM_TITLES = (
    "Customer Registration Form", "Change of Address Form", "Account Opening Application",
    "Membership Application", "Insurance Claim Form", "Employee Information Sheet", "Patient Intake Form",
    "Library Card Application",
)  # fmt: skip

FORM_NOTES = (
    "Please complete all fields in block capitals", "Fields marked with a star are required",
    "Return the completed form to the front desk", "Use black or blue ink only",
)  # fmt: skip


OCCUPATIONS = ("Teacher", "Nurse", "Engineer", "Accountant", "Electrician", "Designer", "Student", "Pharmacist")
NATIONALITIES = ("Canadian", "Irish", "Portuguese", "Danish", "Brazilian", "Japanese", "Kenyan", "Polish")
MARITAL = ("Single", "Married", "Divorced", "Widowed")

LETTER_SUBJECTS = (
    "Confirmation of your appointment", "Change to your service plan", "Outstanding balance on your account",
    "Invitation to our annual meeting", "Your recent enquiry", "Renewal of your membership",
    "Update on your application", "Delivery of your order",
)  # fmt: skip

LETTER_OPENINGS = (
    "Thank you for your letter of last week.",
    "I am writing regarding your recent request.",
    "We are pleased to inform you about an important update.",
    "Following our telephone conversation, I write to confirm the details.",
    "I hope this letter finds you well.",
)

LETTER_SENTENCES = (
    "Our team has reviewed the documents you sent and found them complete.",
    "We appreciate your patience while we processed your request.",
    "All changes will take effect at the start of the next billing period.",
    "If any of the details above are incorrect, please let us know as soon as possible.",
    "A copy of the signed agreement is enclosed for your records.",
    "Our office is open Monday to Friday from nine to five.",
    "We value your continued trust in our services.",
    "You do not need to take any further action at this time.",
    "The new terms have been designed to give you more flexibility.",
    "Please keep this letter for future reference.",
    "We will contact you again once the review is finished.",
    "Our records show that your last payment was received in full.",
)  # fmt: skip

LETTER_CLOSINGS = ("Sincerely,", "Kind regards,", "Yours faithfully,", "Best regards,", "Yours sincerely,")

JOB_TITLES = (
    "Customer Service Manager", "Head of Accounts", "Office Administrator", "Client Relations Officer",
    "Operations Director", "Membership Secretary",
)  # fmt: skip

TABLE_ROWS: dict[str, tuple[str, ...]] = {
    "Region": ("North", "South", "East", "West", "Central", "Northeast", "Southwest", "Coastal", "Highlands"),
    "Department": ("Sales", "Marketing", "Engineering", "Finance", "Support", "Operations", "Legal", "Research"),
    "Product": ("Widgets", "Gadgets", "Sprockets", "Gizmos", "Brackets", "Valves", "Sensors", "Cables", "Pumps"),
    "City": CITIES,
    "Store": ("Store 101", "Store 102", "Store 205", "Store 310", "Store 412", "Store 518", "Store 630"),
}
"""First-column header -> the row labels a table of that kind has."""

TABLE_COLUMNS: tuple[tuple[str, ...], ...] = (
    ("Q1", "Q2", "Q3", "Q4"),
    ("2021", "2022", "2023", "2024", "2025"),
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    ("Budget", "Actual", "Forecast"),
    ("Week 1", "Week 2", "Week 3", "Week 4"),
)  # fmt: skip

TABLE_MEASURES: dict[str, tuple[float, float, bool]] = {
    "Units sold": (100, 20000, False),
    "Revenue (thousands)": (50, 9000, False),
    "Orders": (20, 5000, False),
    "Headcount": (3, 400, False),
    "Visitors": (500, 20000, False),
    "Costs (thousands)": (20, 5000, False),
    "Tickets closed": (10, 3000, False),
    "Return rate": (0.5, 12.0, True),
    "Growth": (-5.0, 25.0, True),
}
"""Measure -> (lowest, highest, is a percentage): percentages print with one decimal and get no total."""

TABLE_SOURCES = ("Source: internal reporting", "Source: finance department", "Figures are provisional")

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
