"""The two Redis sides: who connects (`clients`) and every key family (`keys`)."""
