"""ChatBot.com webhook blocks: answered at once from the customer's profile and the rules' ``chatbot`` section."""
